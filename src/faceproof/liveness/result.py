"""The liveness verdict: frozen, safe to log and serialise (no pixels, no embeddings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceproof.reasons import ReasonCode, Severity, describe

__all__ = ["CheckResult", "LivenessResult"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: a 0..1 score (higher = more live), whether it passed, and its measures."""

    name: str  # "parallax" | "timing" | "continuity" | "light" | "passive" | "challenge"
    score: float
    passed: bool
    code: ReasonCode | None = None  # the reason when it did not pass
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"CheckResult.score must be in [0, 1], got {self.score}")
        if self.passed == (self.code is not None):
            raise ValueError("CheckResult: a failed check needs a code, a passed one none")

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "passed": self.passed,
            **({"code": self.code.value} if self.code else {}),
            **({"details": self.details} if self.details else {}),
        }


@dataclass(frozen=True, slots=True)
class LivenessResult:
    """`live` only when every check passed; `score` is the weakest check's score.

    The score is "calibrated-ish": each check maps its measure through a logistic centred on
    its threshold (0.5 = on the threshold), set on generated clips, not on a real PAD data set
    (docs/liveness.md). `best_frame` is the index of the frame to match against the ID
    portrait (sharp and frontal), or None when no frame had a face.
    """

    live: bool
    score: float
    reasons: tuple[ReasonCode, ...]
    checks: tuple[CheckResult, ...]
    best_frame: int | None
    frames: int
    duration_s: float
    fps: float
    face_frames: int
    analysis_ms: float

    def __post_init__(self) -> None:
        if self.live and any(describe(c).severity is Severity.REJECT for c in self.reasons):
            raise ValueError("LivenessResult: live with a rejecting reason")

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "score": round(self.score, 4),
            "reasons": [c.value for c in self.reasons],
            "messages": [describe(c).to_dict() for c in self.reasons],
            "checks": {c.name: c.to_dict() for c in self.checks},
            "best_frame": self.best_frame,
            "clip": {
                "frames": self.frames,
                "duration_s": round(self.duration_s, 3),
                "fps": round(self.fps, 2),
                "face_frames": self.face_frames,
            },
            "analysis_ms": round(self.analysis_ms, 1),
        }
