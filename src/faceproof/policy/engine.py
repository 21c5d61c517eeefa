"""Evaluate the subscription rules for one applicant, in one place, with reasons.

Outcomes: `deny` (a rule forbids the line: barred, blocked, line limit), `review` (a fraud
signal a person must look at: possible stolen card, store velocity), or `allow`. The service
checks before capture starts (deny early, before any face is taken) and again before a final
`pass`, because lines can be opened elsewhere in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from faceproof.policy.registry import LineRegistry
from faceproof.policy.rules import PolicyRules
from faceproof.reasons import ReasonCode, describe

__all__ = ["PolicyContext", "PolicyOutcome", "evaluate"]

Stage = Literal["pre_capture", "pre_pass"]


@dataclass(frozen=True, slots=True)
class PolicyContext:
    identity: str  # pseudonymous (HMAC of the registration number), never the number itself
    carrier: str
    store: str
    stage: Stage = "pre_capture"


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    decision: Literal["allow", "deny", "review"]
    reasons: tuple[ReasonCode, ...]
    rules_version: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": [code.value for code in self.reasons],
            "messages": [describe(code).to_dict() for code in self.reasons],
            "rules_version": self.rules_version,
            "details": self.details,
        }


def evaluate(
    context: PolicyContext, registry: LineRegistry, rules: PolicyRules, now: datetime
) -> PolicyOutcome:
    rules = rules.for_tenant(context.carrier)
    deny: list[ReasonCode] = []
    review: list[ReasonCode] = []
    details: dict[str, Any] = {"stage": context.stage}

    barred = registry.barred_until(context.identity)
    if rules.enforce_bar and barred is not None and barred > now:
        deny.append(ReasonCode.POLICY_BARRED)
        details["barred_until"] = barred.date().isoformat()
    if rules.enforce_block and registry.is_blocked(context.identity):
        deny.append(ReasonCode.POLICY_BLOCKED)

    opened = registry.count_activations(context.identity, now - timedelta(days=rules.window_days))
    details["new_lines_in_window"] = opened
    details["line_limit"] = {"max": rules.max_new_lines, "window_days": rules.window_days}
    if opened >= rules.max_new_lines:
        deny.append(ReasonCode.POLICY_LINE_LIMIT)

    failed, stores = registry.failed_checks(
        context.identity, now - timedelta(hours=rules.stolen_card_window_hours)
    )
    details["failed_checks_24h"] = {"count": failed, "distinct_stores": stores}
    if failed >= rules.stolen_card_max_failed and stores >= rules.stolen_card_min_stores:
        review.append(ReasonCode.POLICY_POSSIBLE_STOLEN_CARD)

    lines_hour, failed_hour = registry.store_activity(
        context.carrier, context.store, now - timedelta(hours=1)
    )
    details["store_last_hour"] = {"activations": lines_hour, "failed_checks": failed_hour}
    if (
        lines_hour >= rules.store_max_activations_per_hour
        or failed_hour >= rules.store_max_failed_per_hour
    ):
        review.append(ReasonCode.POLICY_STORE_VELOCITY)

    if deny:
        return PolicyOutcome("deny", tuple(deny + review), rules.version, details)
    if review:
        return PolicyOutcome("review", tuple(review), rules.version, details)
    return PolicyOutcome("allow", (ReasonCode.POLICY_ALLOWED,), rules.version, details)
