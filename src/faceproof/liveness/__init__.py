"""Liveness (presentation-attack detection) on short camera clips. See docs/liveness.md.

    clip = load_clip("selfie.webm")                 # or a folder of frames
    result = LivenessEngine().analyze(clip)         # parallax, continuity, timing, light
    result.live, result.score, result.reasons

With a challenge: `ChallengeIssuer(key).issue(session)` gives a signed spec for the capture
page; `ChallengeIssuer.verify(spec)` turns it back into a `Challenge` for `analyze`.
"""

from faceproof.liveness.challenge import (
    ACTIONS,
    Challenge,
    ChallengeError,
    ChallengeIssuer,
)
from faceproof.liveness.clip import DEFAULT_CLIP_LIMITS, Clip, ClipError, ClipLimits, load_clip
from faceproof.liveness.engine import LivenessConfig, LivenessEngine
from faceproof.liveness.result import CheckResult, LivenessResult

__all__ = [
    "ACTIONS",
    "DEFAULT_CLIP_LIMITS",
    "Challenge",
    "ChallengeError",
    "ChallengeIssuer",
    "CheckResult",
    "Clip",
    "ClipError",
    "ClipLimits",
    "LivenessConfig",
    "LivenessEngine",
    "LivenessResult",
    "load_clip",
]
