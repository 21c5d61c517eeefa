"""The decision engine shared by the HTTP service and the offline `faceproof verify`.

Two steps, kept apart so that the policy is a pure function:

- `gather_evidence(comparer, engine, card, clip, challenge)` runs the models: liveness on the
  clip, then (only when the clip is live) the clip's best frame against the card's template.
  An unusable clip (no face, two faces) is evidence too (`Evidence.unusable`), not an exception.
- `decide(...)` turns the evidence, the attempt count and the document status into a `Decision`.
  It runs no model and reads no clock.

The policy (docs/service.md, "Decisions"):

| evidence | decision |
| --- | --- |
| document rejected | `fail` (with the document's reasons) |
| unusable capture (`face_not_found`, `clip_corrupt`, ...) | `retry` |
| liveness ran and the clip is not live | `retry`, with the liveness reasons |
| live (or liveness not performed) but no match | `retry`, with `match_rejected` |
| match, liveness not performed (single selfie) | `review` + `liveness_not_performed` |
| match and live, document not verified | `review` + `document_not_verified` |
| match, live, document verified | `pass` |

A `retry` on the last allowed attempt becomes `alternative_required` + `attempts_exhausted`.
No `pass` is ever issued without both liveness and a verified document.

Nothing here holds pixels or embeddings beyond the call: `Decision` carries scores, reason codes,
check summaries and model ids only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from faceproof.reasons import ReasonCode, describe

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from faceproof.capture import DecodedImage
    from faceproof.comparison import CompareResult, FaceComparer
    from faceproof.faces.types import FaceTemplate
    from faceproof.liveness.challenge import Challenge
    from faceproof.liveness.clip import Clip
    from faceproof.liveness.engine import LivenessEngine
    from faceproof.liveness.result import LivenessResult

__all__ = [
    "Decision",
    "DocumentStatus",
    "Evidence",
    "Outcome",
    "comparer_models",
    "decide",
    "gather_evidence",
    "liveness_models",
]


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - a decision, not a secret
    FAIL = "fail"
    RETRY = "retry"
    REVIEW = "review"
    ALTERNATIVE_REQUIRED = "alternative_required"


class DocumentStatus(StrEnum):
    NOT_VERIFIED = "not_verified"  # the document reader is not integrated yet
    VERIFIED = "verified"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Decision:
    """One attempt's outcome and everything needed to explain and sign it."""

    outcome: Outcome
    final: bool
    reasons: tuple[ReasonCode, ...]
    match: CompareResult | None
    liveness: LivenessResult | None
    document: DocumentStatus
    attempt: int
    attempts_limit: int
    models: tuple[str, ...]

    @property
    def codes(self) -> list[str]:
        return [c.value for c in self.reasons]

    def match_dict(self) -> dict[str, Any]:
        """`{score, threshold, fmr_target, match}`; nulls (and `match: false`) when not run."""
        m = self.match
        return {
            "score": None if m is None else round(m.score, 4),
            "threshold": None if m is None else round(m.threshold, 4),
            "fmr_target": None if m is None else m.fmr_target,
            "match": False if m is None else m.match,
        }

    def liveness_checks(self) -> list[dict[str, Any]]:
        """The liveness checks that ran: name, passed, score (for receipts and records)."""
        if self.liveness is None:
            return []
        return [
            {"name": c.name, "passed": c.passed, "score": round(c.score, 4)}
            for c in self.liveness.checks
        ]

    def scores(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match is not None:
            out["score"] = round(self.match.score, 4)
            out["threshold"] = round(self.match.threshold, 4)
            out["fmr_target"] = self.match.fmr_target
        if self.liveness is not None:
            out["liveness_score"] = round(self.liveness.score, 4)
            out["liveness_live"] = self.liveness.live
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.outcome.value,
            "final": self.final,
            "reasons": self.codes,
            "messages": [describe(c).to_dict() for c in self.reasons],
            "match": self.match_dict(),
            "liveness": None if self.liveness is None else self.liveness.to_dict(),
            "attempts": {"used": self.attempt, "limit": self.attempts_limit},
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the models found for one capture. `unusable` is the capture's error code, if any."""

    liveness: LivenessResult | None
    match: CompareResult | None
    unusable: ReasonCode | None
    models: tuple[str, ...]


def _unique(codes: Iterable[ReasonCode]) -> tuple[ReasonCode, ...]:
    out: list[ReasonCode] = []
    for code in codes:
        if code not in out:
            out.append(code)
    return tuple(out)


def decide(
    *,
    match: CompareResult | None,
    liveness: LivenessResult | None,
    attempt: int,
    attempts_limit: int,
    document: DocumentStatus = DocumentStatus.NOT_VERIFIED,
    document_reasons: Sequence[ReasonCode] = (),
    unusable: ReasonCode | None = None,
    models: Sequence[str] = (),
) -> Decision:
    """The decision for one attempt (`attempt` counts from 1). Pure: no models, no clock.

    `liveness=None` means liveness was not performed (the single-selfie path); a `match` of
    None with no `unusable` code is treated as an unusable capture (`face_not_found`).
    """
    if attempt < 1 or attempts_limit < 1:
        raise ValueError("decide: attempt and attempts_limit count from 1")

    def made(outcome: Outcome, final: bool, reasons: Iterable[ReasonCode]) -> Decision:
        return Decision(
            outcome,
            final,
            _unique(reasons),
            match,
            liveness,
            document,
            attempt,
            attempts_limit,
            tuple(models),
        )

    def again(reasons: Iterable[ReasonCode]) -> Decision:
        if attempt >= attempts_limit:
            return made(
                Outcome.ALTERNATIVE_REQUIRED, True, [*reasons, ReasonCode.ATTEMPTS_EXHAUSTED]
            )
        return made(Outcome.RETRY, False, reasons)

    if document is DocumentStatus.REJECTED:
        return made(Outcome.FAIL, True, document_reasons or [ReasonCode.DOCUMENT_NOT_VERIFIED])
    if unusable is not None:
        return again([unusable])
    if liveness is not None and not liveness.live:
        return again([c for c in liveness.reasons if c is not ReasonCode.LIVENESS_PASSED])
    if match is None:
        return again([ReasonCode.FACE_NOT_FOUND])
    if not match.match:
        return again(match.reasons)
    reasons: list[ReasonCode] = list(match.reasons)
    if liveness is None:
        reasons.append(ReasonCode.LIVENESS_NOT_PERFORMED)
    else:
        reasons = [*liveness.reasons, *reasons]
    if document is not DocumentStatus.VERIFIED:
        reasons.append(ReasonCode.DOCUMENT_NOT_VERIFIED)
    else:
        reasons.extend(document_reasons)
    if liveness is None or document is not DocumentStatus.VERIFIED:
        return made(Outcome.REVIEW, True, reasons)  # never an unverified pass
    return made(Outcome.PASS, True, reasons)


# --- the inference that feeds `decide` --------------------------------------------------------


def comparer_models(comparer: FaceComparer, result: CompareResult | None) -> list[str]:
    """The detector and the recognisers that produced `result` (none when it is None)."""
    if result is None:
        return []
    detector = getattr(comparer.analyzer.detector, "model_id", None)
    return ([detector] if isinstance(detector, str) else []) + sorted(result.details.cosines)


def liveness_models(engine: LivenessEngine) -> list[str]:
    ids = (getattr(part, "model_id", None) for part in (engine.detector, engine.landmarker))
    embedder = getattr(engine.embedder, "model_id", None)
    return [i for i in (*ids, embedder) if isinstance(i, str)]


def _frame_image(frame: npt.NDArray[np.uint8]) -> DecodedImage:
    """A clip frame as a `DecodedImage` for the face comparer (no re-encoding)."""
    import numpy as np

    from faceproof.capture import DecodedImage

    pixels = np.ascontiguousarray(frame, dtype=np.uint8)
    if pixels.flags.writeable:
        pixels = pixels.copy()
        pixels.flags.writeable = False
    h, w = pixels.shape[:2]
    # A decoded video frame is raw RGB like a decoded PNG: "png" marks it lossless in memory.
    return DecodedImage(pixels, "png", int(w), int(h))


def gather_evidence(
    comparer: FaceComparer,
    engine: LivenessEngine,
    card: FaceTemplate,
    clip: Clip,
    challenge: Challenge | None = None,
) -> Evidence:
    """Liveness on `clip`; when live, its best frame matched 1:1 against `card`.

    Input errors of the capture (no face, two faces, a best frame too small) come back as
    `Evidence.unusable`; model failures (`ModelError`) propagate.
    """
    from faceproof.errors import InputError

    models = liveness_models(engine)
    try:
        liveness = engine.analyze(clip, challenge)
    except InputError as exc:
        return Evidence(None, None, exc.code, tuple(models))
    if not liveness.live:
        return Evidence(liveness, None, None, tuple(models))
    if liveness.best_frame is None:
        return Evidence(liveness, None, ReasonCode.FACE_NOT_FOUND, tuple(models))
    try:
        live = comparer.template(_frame_image(clip.frames[liveness.best_frame]))
        match = comparer.compare_templates(card, live)
    except InputError as exc:
        return Evidence(liveness, None, exc.code, tuple(models))
    del live
    for model in comparer_models(comparer, match):
        if model not in models:
            models.append(model)
    return Evidence(liveness, match, None, tuple(models))
