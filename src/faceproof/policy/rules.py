"""Versioned subscription rules, read from YAML and validated; tenants may only tighten them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from faceproof.errors import ServiceError
from faceproof.reasons import ReasonCode

__all__ = ["PolicyRules", "load_rules"]


@dataclass(frozen=True, slots=True)
class PolicyRules:
    version: str
    max_new_lines: int
    window_days: int
    enforce_block: bool
    enforce_bar: bool
    stolen_card_max_failed: int
    stolen_card_min_stores: int
    stolen_card_window_hours: int
    store_max_activations_per_hour: int
    store_max_failed_per_hour: int
    regulator_max_new_lines: int
    regulator_min_window_days: int
    tenant_overrides: dict[str, dict[str, int]]

    def for_tenant(self, tenant: str) -> PolicyRules:
        """The rules with the tenant's overrides applied (validated at load time)."""
        override = self.tenant_overrides.get(tenant, {})
        return replace(self, **override) if override else self  # type: ignore[arg-type]


def _invalid(detail: str) -> ServiceError:
    return ServiceError(ReasonCode.POLICY_INVALID, detail)


def _int(section: dict[str, Any], key: str, where: str) -> int:
    value = section.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"{where}.{key} must be a non-negative integer")
    return value


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise _invalid(f"missing section {key!r}")
    return value


_OVERRIDABLE = {
    "max_new_lines",
    "window_days",
    "stolen_card_max_failed",
    "store_max_activations_per_hour",
    "store_max_failed_per_hour",
}


def _parse(data: Any) -> PolicyRules:
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        raise _invalid("the rules need a string `version`")
    limit = _section(data, "line_limit")
    stolen = _section(data, "stolen_card")
    velocity = _section(data, "store_velocity")
    bounds = _section(data, "regulator_bounds")
    rules = PolicyRules(
        version=data["version"],
        max_new_lines=_int(limit, "max_new_lines", "line_limit"),
        window_days=_int(limit, "window_days", "line_limit"),
        enforce_block=bool(_section(data, "blocked").get("enforce", True)),
        enforce_bar=bool(_section(data, "barred").get("enforce", True)),
        stolen_card_max_failed=_int(stolen, "max_failed_checks", "stolen_card"),
        stolen_card_min_stores=_int(stolen, "min_distinct_stores", "stolen_card"),
        stolen_card_window_hours=_int(stolen, "window_hours", "stolen_card"),
        store_max_activations_per_hour=_int(velocity, "max_activations_per_hour", "store_velocity"),
        store_max_failed_per_hour=_int(velocity, "max_failed_checks_per_hour", "store_velocity"),
        regulator_max_new_lines=_int(bounds, "max_new_lines", "regulator_bounds"),
        regulator_min_window_days=_int(bounds, "window_days_min", "regulator_bounds"),
        tenant_overrides={},
    )
    _check_bounds(rules, "the base rules")
    overrides = data.get("tenant_overrides") or {}
    if not isinstance(overrides, dict):
        raise _invalid("tenant_overrides must be a mapping of tenant -> settings")
    checked: dict[str, dict[str, int]] = {}
    for tenant, values in overrides.items():
        if not isinstance(values, dict) or not set(values) <= _OVERRIDABLE:
            raise _invalid(f"tenant {tenant!r} may override only {sorted(_OVERRIDABLE)}")
        ints = {k: _int(values, k, f"tenant_overrides.{tenant}") for k in values}
        _check_bounds(replace(rules, **ints), f"tenant {tenant!r}")  # type: ignore[arg-type]
        checked[str(tenant)] = ints
    return replace(rules, tenant_overrides=checked)


def _check_bounds(rules: PolicyRules, who: str) -> None:
    # The regulator's rule is a ceiling: a carrier may be stricter, never looser.
    if rules.max_new_lines > rules.regulator_max_new_lines:
        raise _invalid(
            f"{who}: max_new_lines above the regulator's {rules.regulator_max_new_lines}"
        )
    if rules.window_days < rules.regulator_min_window_days:
        raise _invalid(
            f"{who}: window_days below the regulator's {rules.regulator_min_window_days}"
        )


def load_rules(path: str | Path | None = None) -> PolicyRules:
    """The operator's rules file, or the packaged default."""
    try:
        if path is None:
            text = resources.files("faceproof.policy").joinpath("rules.yaml").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return _parse(yaml.safe_load(text))
    except (OSError, yaml.YAMLError) as exc:
        raise _invalid(f"cannot read the policy rules: {type(exc).__name__}") from exc
