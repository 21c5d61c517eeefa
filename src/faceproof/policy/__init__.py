"""Subscription policy against burner phones: cross-carrier line limits, blocks, bars, fraud flags.

Rules live in a versioned YAML file (`rules.yaml`, or the operator's own) and are evaluated in
one place (`engine.evaluate`), every outcome explained with reason codes in Korean and English.
"""

from faceproof.policy.engine import PolicyContext, PolicyOutcome, evaluate
from faceproof.policy.registry import Activation, FailedCheck, InMemoryLineRegistry, LineRegistry
from faceproof.policy.rules import PolicyRules, load_rules

__all__ = [
    "Activation",
    "FailedCheck",
    "InMemoryLineRegistry",
    "LineRegistry",
    "PolicyContext",
    "PolicyOutcome",
    "PolicyRules",
    "evaluate",
    "load_rules",
]
