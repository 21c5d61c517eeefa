"""Subscription policy: cross-carrier line limit, blocks, bars, fraud flags, tenant overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faceproof.errors import ServiceError
from faceproof.policy import (
    Activation,
    FailedCheck,
    InMemoryLineRegistry,
    PolicyContext,
    evaluate,
    load_rules,
)
from faceproof.reasons import ReasonCode

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ALICE = "pseudonym-alice"  # registries only ever see HMAC pseudonyms


def activate(registry: InMemoryLineRegistry, carrier: str, line: str, days_ago: float) -> None:
    registry.record_activation(
        Activation(ALICE, carrier, f"{carrier}-store-1", line, NOW - timedelta(days=days_ago))
    )


@pytest.fixture
def registry() -> InMemoryLineRegistry:
    return InMemoryLineRegistry()


def test_packaged_rules_state_the_korean_limit() -> None:
    rules = load_rules()
    assert (rules.max_new_lines, rules.window_days) == (3, 30)
    assert rules.version


def test_fourth_line_in_30_days_at_another_carrier_is_denied(
    registry: InMemoryLineRegistry,
) -> None:
    rules = load_rules()
    context = PolicyContext(ALICE, carrier="mvno-b", store="b-store-7")
    activate(registry, "carrier-a", "line-1", days_ago=20)
    activate(registry, "carrier-a", "line-2", days_ago=10)
    assert evaluate(context, registry, rules, NOW).decision == "allow"  # third line is fine
    activate(registry, "carrier-c", "line-3", days_ago=1)
    outcome = evaluate(context, registry, rules, NOW)
    assert outcome.decision == "deny"
    assert outcome.reasons == (ReasonCode.POLICY_LINE_LIMIT,)
    assert outcome.details["new_lines_in_window"] == 3
    # The explanation is readable in both languages.
    message = outcome.to_dict()["messages"][0]
    assert "carriers" in message["message_en"]
    assert "통신사" in message["message_ko"]


def test_lines_older_than_the_window_do_not_count(registry: InMemoryLineRegistry) -> None:
    for i, days in enumerate((31, 45, 60)):
        activate(registry, "carrier-a", f"old-{i}", days_ago=days)
    outcome = evaluate(PolicyContext(ALICE, "carrier-a", "s"), registry, load_rules(), NOW)
    assert outcome.decision == "allow"
    assert outcome.details["new_lines_in_window"] == 0


def test_a_confirmed_line_is_counted_once(registry: InMemoryLineRegistry) -> None:
    for _ in range(3):
        activate(registry, "carrier-a", "same-line", days_ago=1)
    assert registry.count_activations(ALICE, NOW - timedelta(days=30)) == 1


def test_blocked_identity_is_denied(registry: InMemoryLineRegistry) -> None:
    registry.set_blocked(ALICE, True)
    outcome = evaluate(PolicyContext(ALICE, "carrier-a", "s"), registry, load_rules(), NOW)
    assert outcome.decision == "deny"
    assert ReasonCode.POLICY_BLOCKED in outcome.reasons
    registry.set_blocked(ALICE, False)
    assert evaluate(PolicyContext(ALICE, "carrier-a", "s"), registry, load_rules(), NOW).allowed


def test_barred_identity_is_denied_until_the_date(registry: InMemoryLineRegistry) -> None:
    registry.set_barred_until(ALICE, NOW + timedelta(days=200))
    context = PolicyContext(ALICE, "carrier-a", "s")
    outcome = evaluate(context, registry, load_rules(), NOW)
    assert outcome.decision == "deny"
    assert outcome.reasons == (ReasonCode.POLICY_BARRED,)
    later = NOW + timedelta(days=201)
    assert evaluate(context, registry, load_rules(), later).decision == "allow"


def test_failed_checks_across_stores_flag_a_possible_stolen_card(
    registry: InMemoryLineRegistry,
) -> None:
    context = PolicyContext(ALICE, "carrier-a", "s")
    for store in ("a-1", "a-1", "a-1"):  # one store only: a struggling applicant, not a pattern
        registry.record_failed_check(FailedCheck(ALICE, "carrier-a", store, NOW))
    assert evaluate(context, registry, load_rules(), NOW).decision == "allow"
    registry.record_failed_check(FailedCheck(ALICE, "mvno-b", "b-9", NOW - timedelta(hours=2)))
    outcome = evaluate(context, registry, load_rules(), NOW)
    assert outcome.decision == "review"
    assert outcome.reasons == (ReasonCode.POLICY_POSSIBLE_STOLEN_CARD,)
    # A day later the burst has aged out of the 24 h window.
    assert evaluate(context, registry, load_rules(), NOW + timedelta(hours=25)).allowed


def test_store_velocity_flags_review(registry: InMemoryLineRegistry) -> None:
    rules = load_rules()
    for i in range(rules.store_max_activations_per_hour):
        registry.record_activation(
            Activation(
                f"someone-{i}", "carrier-a", "busy-store", f"l{i}", NOW - timedelta(minutes=i)
            )
        )
    outcome = evaluate(PolicyContext(ALICE, "carrier-a", "busy-store"), registry, rules, NOW)
    assert outcome.decision == "review"
    assert ReasonCode.POLICY_STORE_VELOCITY in outcome.reasons
    quiet = evaluate(PolicyContext(ALICE, "carrier-a", "quiet-store"), registry, rules, NOW)
    assert quiet.allowed


def test_deny_outranks_review_and_keeps_both_reasons(registry: InMemoryLineRegistry) -> None:
    registry.set_blocked(ALICE, True)
    for store in ("x", "y", "z"):
        registry.record_failed_check(FailedCheck(ALICE, "carrier-a", store, NOW))
    outcome = evaluate(PolicyContext(ALICE, "carrier-a", "s"), registry, load_rules(), NOW)
    assert outcome.decision == "deny"
    assert outcome.reasons == (
        ReasonCode.POLICY_BLOCKED,
        ReasonCode.POLICY_POSSIBLE_STOLEN_CARD,
    )


def write_rules(tmp_path: Path, extra: str) -> Path:
    base = (Path(__file__).parents[1] / "src/faceproof/policy/rules.yaml").read_text("utf-8")
    path = tmp_path / "rules.yaml"
    path.write_text(base.replace("tenant_overrides: {}", extra), encoding="utf-8")
    return path


def test_a_tenant_may_be_stricter(registry: InMemoryLineRegistry, tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(tmp_path, "tenant_overrides:\n  strict-mvno:\n    max_new_lines: 1\n")
    )
    activate(registry, "carrier-a", "line-1", days_ago=3)
    strict = evaluate(PolicyContext(ALICE, "strict-mvno", "s"), registry, rules, NOW)
    other = evaluate(PolicyContext(ALICE, "carrier-a", "s"), registry, rules, NOW)
    assert strict.decision == "deny"
    assert other.decision == "allow"


@pytest.mark.parametrize(
    "override",
    [
        "tenant_overrides:\n  loose:\n    max_new_lines: 5\n",
        "tenant_overrides:\n  loose:\n    window_days: 7\n",
        "tenant_overrides:\n  loose:\n    enforce_block: 0\n",
        "tenant_overrides:\n  loose:\n    max_new_lines: -1\n",
    ],
)
def test_a_tenant_cannot_loosen_the_regulators_rules(tmp_path: Path, override: str) -> None:
    with pytest.raises(ServiceError) as info:
        load_rules(write_rules(tmp_path, override))
    assert info.value.code is ReasonCode.POLICY_INVALID


@pytest.mark.parametrize("text", ["", "version: 1\n", "[1, 2]\n", "version: 'x'\nline_limit: 3\n"])
def test_invalid_rules_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ServiceError) as info:
        load_rules(path)
    assert info.value.code is ReasonCode.POLICY_INVALID


def test_missing_rules_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as info:
        load_rules(tmp_path / "absent.yaml")
    assert info.value.code is ReasonCode.POLICY_INVALID
