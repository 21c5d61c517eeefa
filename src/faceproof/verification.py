"""The decision engine shared by the HTTP service and the offline `faceproof verify`.

The card first: `read_card(photo, comparer, today=, kor=, eng=, issuer=, pseudonym_key=)` reads
it with `documents.read_document` (the issuer asked when given), takes the face template from
the card's cut-out portrait, and returns `DocumentEvidence` from the pure `assess_document`
(`verified`, `unverified` or `rejected`; codes, check outcomes, type, pseudonymous subject id).

Then two steps, kept apart so that the policy is a pure function:

- `gather_evidence(comparer, engine, card, clip, challenge)` runs the models: liveness on the
  clip, then (only when the clip is live) the clip's best frame against the card's template.
  An unusable clip (no face, two faces) is evidence too (`Evidence.unusable`), not an exception.
- `decide(...)` turns the evidence, the attempt count and the document status into a `Decision`.
  It runs no model and reads no clock.

The policy (docs/service.md, "Decisions"):

| evidence | decision |
| --- | --- |
| document rejected | `fail` with its reject codes (decided at the service's document step) |
| unusable capture (`face_not_found`, `clip_corrupt`, ...) | `retry` |
| liveness ran and the clip is not live | `retry`, with the liveness reasons |
| live (or liveness not performed) but no match | `retry`, with `match_rejected` |
| match, liveness not performed (single selfie) | `review` + `liveness_not_performed` |
| match and live, document unverified | `review` + its warnings + `document_not_verified` |
| match, live, document verified | `pass` (+ `issuer_confirmed` when checked) |

A `retry` on the last allowed attempt becomes `alternative_required` + `attempts_exhausted`.
No `pass` is ever issued without both liveness and a verified document.

Nothing here holds pixels or embeddings beyond the call: `Decision` carries scores, reason codes,
check summaries and model ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from faceproof.errors import InputError
from faceproof.policy.engine import PolicyOutcome
from faceproof.reasons import ReasonCode, describe

if TYPE_CHECKING:
    from datetime import date

    import numpy as np
    import numpy.typing as npt

    from faceproof.capture import DecodedImage
    from faceproof.comparison import CompareResult, FaceComparer
    from faceproof.documents.issuer import IssuerCheck
    from faceproof.documents.ocr import OcrEngine
    from faceproof.documents.types import DocumentRead
    from faceproof.faces.types import FaceTemplate, FloatArray
    from faceproof.liveness.challenge import Challenge
    from faceproof.liveness.clip import Clip
    from faceproof.liveness.engine import LivenessEngine
    from faceproof.liveness.result import LivenessResult

__all__ = [
    "Decision",
    "DocumentEvidence",
    "DocumentStatus",
    "Evidence",
    "Outcome",
    "assess_document",
    "comparer_models",
    "decide",
    "gather_evidence",
    "liveness_models",
    "read_card",
]


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - a decision, not a secret
    FAIL = "fail"
    RETRY = "retry"
    REVIEW = "review"
    ALTERNATIVE_REQUIRED = "alternative_required"


class DocumentStatus(StrEnum):
    UNVERIFIED = "unverified"  # read, nothing rejects it, but not everything could be confirmed
    VERIFIED = "verified"  # accepted, complete and (when configured) confirmed by the issuer
    REJECTED = "rejected"  # a rejecting check failed (expired, revoked, no face, ...)


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
    document: DocumentStatus = DocumentStatus.UNVERIFIED,
    document_reasons: Sequence[ReasonCode] = (),
    unusable: ReasonCode | None = None,
    models: Sequence[str] = (),
    policy: PolicyOutcome | None = None,
) -> Decision:
    """The decision for one attempt (`attempt` counts from 1). Pure: no models, no clock.

    `liveness=None` means liveness was not performed (the single-selfie path); a `match` of
    None with no `unusable` code is treated as an unusable capture (`face_not_found`).
    `document_reasons` (see `DocumentEvidence.reasons`): for a rejected document its reject
    codes (the decision's reasons); otherwise appended to a match's reasons (`issuer_confirmed`,
    `issuer_unavailable`, `field_unreadable`, ...). A rejected document may be decided before
    any attempt (`attempt=0`, the document step).
    """
    rejected = document is DocumentStatus.REJECTED
    denied = policy is not None and policy.decision == "deny"
    if attempts_limit < 1 or attempt < (0 if rejected or denied else 1):
        raise ValueError("decide: attempt counts from 1 (0 only for a rejected document)")

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
    if denied:
        # The subscription rules forbid a new line for this person: no face check can help.
        assert policy is not None
        return made(Outcome.FAIL, True, policy.reasons)
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
    reasons.extend(document_reasons)
    if document is not DocumentStatus.VERIFIED:
        reasons.append(ReasonCode.DOCUMENT_NOT_VERIFIED)
    if policy is not None and policy.decision == "review":
        # A fraud signal (possible stolen card, store velocity, registry unavailable): a person
        # looks before a line opens.
        return made(Outcome.REVIEW, True, [*reasons, *policy.reasons])
    if liveness is None or document is not DocumentStatus.VERIFIED:
        return made(Outcome.REVIEW, True, reasons)  # never an unverified pass
    return made(Outcome.PASS, True, reasons)


# --- the inference that feeds `decide` --------------------------------------------------------


def check_policy(policy: Callable[[str], PolicyOutcome], number: str) -> PolicyOutcome:
    """Run the policy; an unreachable line registry becomes a `review`, never a hang or a pass."""
    from faceproof.errors import ServiceError

    try:
        return policy(number)
    except ServiceError as exc:
        if exc.code is not ReasonCode.REGISTRY_UNAVAILABLE:
            raise
        return PolicyOutcome("review", (ReasonCode.REGISTRY_UNAVAILABLE,), "unknown")


def comparer_models(comparer: FaceComparer, result: CompareResult | None) -> list[str]:
    """The detector and the recognisers that produced `result` (none when it is None)."""
    if result is None:
        return []
    detector = getattr(comparer.analyzer.detector, "model_id", None)
    return ([detector] if isinstance(detector, str) else []) + sorted(result.details.cosines)


def liveness_models(engine: LivenessEngine) -> list[str]:
    ids = (getattr(part, "model_id", None) for part in (engine.detector, engine.landmarker))
    eyes = getattr(engine.landmarker, "eye_model_id", None)  # refines eyelids for blinks
    embedder = getattr(engine.embedder, "model_id", None)
    pad = getattr(engine.pad_model, "model_id", None)  # operator's PAD model, id + SHA-256 prefix
    return [i for i in (*ids, eyes, embedder, pad) if isinstance(i, str)]


def frame_image(frame: npt.NDArray[np.uint8]) -> DecodedImage:
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


def template_or_error(
    comparer: FaceComparer, pixels: npt.NDArray[np.uint8]
) -> FaceTemplate | InputError:
    """The face template of an in-memory frame, or the input error that prevents one (kept as
    a value: it is taken on a helper thread and looked at later, or never)."""

    try:
        return comparer.template(frame_image(pixels))
    except InputError as exc:
        return exc


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

    models = liveness_models(engine)
    # The best frame's template is taken while liveness still runs its identity check beside
    # (no extra wait); it is used only if the clip is live, and dropped either way.
    taken: list[FaceTemplate | InputError] = []

    def take_template(best: int) -> FloatArray | None:
        taken.append(template_or_error(comparer, clip.frames[best]))
        if isinstance(taken[-1], InputError):
            return None
        # The same face by the same model is one of liveness's identity samples too.
        return taken[-1].embeddings.get(engine.embedder.model_id)

    try:
        liveness = engine.analyze(clip, challenge, with_best_frame=take_template)
    except InputError as exc:
        return Evidence(None, None, exc.code, tuple(models))
    if not liveness.live:
        return Evidence(liveness, None, None, tuple(models))
    if liveness.best_frame is None or not taken:
        return Evidence(liveness, None, ReasonCode.FACE_NOT_FOUND, tuple(models))
    live = taken.pop()
    if isinstance(live, InputError):
        return Evidence(liveness, None, live.code, tuple(models))
    try:
        match = comparer.compare_templates(card, live)
    except InputError as exc:
        return Evidence(liveness, None, exc.code, tuple(models))
    del live
    for model in comparer_models(comparer, match):
        if model not in models:
            models.append(model)
    return Evidence(liveness, match, None, tuple(models))


# --- the document: the reader's result as evidence, and the card's face template -------------


@dataclass(frozen=True, slots=True)
class DocumentEvidence:
    """The document step's outcome, with nothing personal in it: the status, the codes `decide`
    uses (`reasons`), every check (name, outcome, code), the type and the pseudonymous subject id
    (`pseudonymise(number, key)`; never the number)."""

    status: DocumentStatus
    reasons: tuple[ReasonCode, ...]
    type: str | None = None
    checks: tuple[tuple[str, bool, ReasonCode], ...] = ()
    subject: str | None = None
    # The subscription policy's outcome for this person (counts and flags only), when checked.
    policy: PolicyOutcome | None = None

    def checks_list(self) -> list[dict[str, Any]]:
        """`[{name, passed, code}]`: for receipts and output (no details, no numbers)."""
        return [{"name": n, "passed": ok, "code": code.value} for n, ok, code in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "type": self.type,
            "reasons": [c.value for c in self.reasons],
            "checks": self.checks_list(),
            **({"policy": self.policy.to_dict()} if self.policy else {}),
        }


def assess_document(
    read: DocumentRead, *, issuer_configured: bool, pseudonym_key: bytes | None = None
) -> DocumentEvidence:
    """The document policy (docs/service.md, "The document step"):

    - `rejected` when any check fails with a REJECT severity (`document_expired`,
      `issuer_revoked`, `portrait_no_face`, ...): its reasons are those reject codes;
    - `verified` when it is accepted and complete and, if an issuer check is configured, the
      issuer confirmed it (`issuer_confirmed` is then its first reason);
    - `unverified` otherwise (a field not read, `issuer_unavailable`, a passport when an issuer
      is configured: passports are not checked with an issuer).

    Failed warnings (`field_unreadable`, `issuer_unavailable`, `rrn_check_digit`, ...) are
    reasons of a verified or unverified document too.
    """
    from faceproof.documents.errors import DocumentError
    from faceproof.documents.privacy import pseudonymise

    checks = tuple((c.name, c.ok, c.code) for c in read.checks)
    subject = None
    number = read.fields.get("number", "")
    if pseudonym_key is not None and number:
        try:
            subject = pseudonymise(number, pseudonym_key)
        except DocumentError:
            subject = None
    rejects = _unique(c.code for c in read.checks if c.rejects)
    if rejects:
        return DocumentEvidence(DocumentStatus.REJECTED, rejects, read.type.value, checks, subject)
    issuer = next((c for c in read.checks if c.name == "issuer"), None)
    confirmed = issuer is not None and issuer.ok
    reasons = _unique([*([ReasonCode.ISSUER_CONFIRMED] if confirmed else []), *read.reasons])
    verified = read.accepted and read.complete and (confirmed or not issuer_configured)
    status = DocumentStatus.VERIFIED if verified else DocumentStatus.UNVERIFIED
    return DocumentEvidence(status, reasons, read.type.value, checks, subject)


def read_card(
    photo: npt.NDArray[np.uint8],
    comparer: FaceComparer,
    *,
    today: date,
    kor: OcrEngine,
    eng: OcrEngine,
    issuer: IssuerCheck | None = None,
    pseudonym_key: bytes | None = None,
    policy: Callable[[str], PolicyOutcome] | None = None,
) -> tuple[DocumentEvidence, FaceTemplate | None]:
    """Read the card photo (`documents.read.read_document`, the portrait checked with the
    comparer's face detector, the issuer asked when given), assess it, and take the face
    template for matching from the card's cut-out portrait (full resolution), not from the
    whole photo. The template is None for a rejected document.

    Raises `DocumentError` (an `InputError`) when the photo cannot be read as a card at all
    (`card_not_found`, `card_cut_off`, `card_too_small`, `card_blurry`,
    `document_type_unknown`, ...): the applicant retakes the photo. Other input errors of the
    portrait (two faces, a face too small) propagate as `InputError` too.
    """
    from faceproof.documents.read import read_document

    # The portrait's template is taken beside the field OCR (read_document calls back as soon
    # as the portrait is cut); it is used only if the document is not rejected.
    taken: list[FaceTemplate | InputError] = []

    def take_template(portrait: npt.NDArray[np.uint8]) -> None:
        taken.append(template_or_error(comparer, portrait))

    result = read_document(
        photo,
        today=today,
        kor=kor,
        eng=eng,
        detector=comparer.analyzer.detector,
        issuer=issuer,
        with_portrait=take_template,
    )
    evidence = assess_document(
        result.document, issuer_configured=issuer is not None, pseudonym_key=pseudonym_key
    )
    if evidence.status is DocumentStatus.REJECTED:
        return evidence, None
    number = result.document.fields.get("number")
    if policy is not None and number:
        # The number is handed to the policy (the line registry) here and goes no further.
        evidence = replace(evidence, policy=check_policy(policy, number))
    if not taken:  # a passport read from its MRZ alone: no callback
        take_template(result.portrait)
    template = taken.pop()
    if isinstance(template, InputError):
        if template.code is not ReasonCode.FACE_NOT_FOUND:
            raise template
        no_face = ("portrait_face", False, ReasonCode.PORTRAIT_NO_FACE)
        checks = (*(c for c in evidence.checks if c[0] != "portrait_face"), no_face)
        return replace(
            evidence,
            status=DocumentStatus.REJECTED,
            reasons=(ReasonCode.PORTRAIT_NO_FACE,),
            checks=checks,
        ), None
    return evidence, template
