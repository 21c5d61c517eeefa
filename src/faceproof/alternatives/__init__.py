"""Non-biometric paths, first-class: the government mobile ID and a clerk's manual check."""

from faceproof.alternatives.manual import ManualCheck, ManualCheckError, record_manual_check
from faceproof.alternatives.mobile_id import (
    MobileIdError,
    MobileIdIdentity,
    MobileIdVerifier,
    StatusListSource,
    TestHolder,
    TestIssuer,
)

__all__ = [
    "ManualCheck",
    "ManualCheckError",
    "MobileIdError",
    "MobileIdIdentity",
    "MobileIdVerifier",
    "StatusListSource",
    "TestHolder",
    "TestIssuer",
    "record_manual_check",
]
