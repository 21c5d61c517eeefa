"""The card held between the document step and the face capture.

`HeldCard`: the face template of the card's cut-out portrait and the document's evidence
(status, reason codes, checks, type, pseudonymous subject id; no field values), and the card's
number for the line registry. Never written to the database, a log or a file. Entries expire
with the capture token and are dropped as soon as a decision is made.

`TemplateStore` keeps them in process memory (one worker: the default). With more than one
worker they live in Redis instead, encrypted under a key only the capture client holds
(`shared_state.RedisState`), serialised by `encode_card` / `decode_card` (plaintext that only
ever exists in memory). A restart (or, without Redis, another worker) loses them: the capture
client then gets `session_state` and uploads the document again.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from faceproof.faces.types import (
    BoundingBox,
    FaceDetection,
    FaceObservation,
    FaceTemplate,
    QualityAssessment,
    QualityItem,
)
from faceproof.policy import PolicyOutcome
from faceproof.reasons import ReasonCode
from faceproof.verification import DocumentEvidence, DocumentStatus

__all__ = ["HeldCard", "TemplateStore", "decode_card", "encode_card"]

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class HeldCard:
    template: FaceTemplate
    document: DocumentEvidence
    # The card's number as the line registry needs it (it keeps only its own HMAC): held for
    # the policy re-check before a pass and to report failed face checks; never written
    # anywhere in the clear, never in a repr.
    registry_identity: str | None = field(default=None, repr=False)


class TemplateStore:
    """Held cards in process memory, by session id (the token is not needed to read them)."""

    keeps_pixels = True  # the template keeps its pixels: the cascade can embed again later

    def __init__(self, clock: Callable[[], datetime], max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._items: dict[str, tuple[HeldCard, datetime]] = {}
        self._lock = threading.Lock()

    def put(self, session_id: str, token: str, card: HeldCard, expires_at: datetime) -> None:
        del token  # in memory there is nothing to encrypt to
        with self._lock:
            self._sweep()
            if len(self._items) >= self._max:
                oldest = min(self._items, key=lambda k: self._items[k][1])
                del self._items[oldest]
            self._items[session_id] = (card, expires_at)

    def get(self, session_id: str, token: str) -> HeldCard | None:
        del token
        with self._lock:
            item = self._items.get(session_id)
            if item is None:
                return None
            if item[1] <= self._clock():
                del self._items[session_id]
                return None
            return item[0]

    def touch(self, session_id: str, expires_at: datetime) -> None:
        """A new expiry (the capture token was extended)."""
        with self._lock:
            item = self._items.get(session_id)
            if item is not None and item[1] > self._clock():
                self._items[session_id] = (item[0], expires_at)

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._items.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, exp) in self._items.items() if exp <= now]:
            del self._items[key]


# --- serialisation (for encryption only: the plaintext never leaves memory) -----------------


def _observation(o: FaceObservation) -> dict[str, Any]:
    d = o.detection
    return {
        "box": list(d.box.astuple()),
        "landmarks": [list(p) for p in d.landmarks],
        "confidence": d.confidence,
        "quality": [
            [i.name, i.value, i.unit, i.bound, i.ok, i.code.value if i.code else None]
            for i in o.quality.items
        ],
        "face_count": o.face_count,
        "size": [o.image_width, o.image_height],
        "reasons": [c.value for c in o.reasons],
    }


def _observation_from(d: dict[str, Any]) -> FaceObservation:
    p = [(float(x), float(y)) for x, y in d["landmarks"]]
    detection = FaceDetection(
        BoundingBox(*(float(v) for v in d["box"])),
        (p[0], p[1], p[2], p[3], p[4]),
        float(d["confidence"]),
    )
    items = tuple(
        QualityItem(n, float(v), u, b, bool(ok), ReasonCode(c) if c else None)
        for n, v, u, b, ok, c in d["quality"]
    )
    return FaceObservation(
        detection=detection,
        quality=QualityAssessment(items),
        face_count=int(d["face_count"]),
        image_width=int(d["size"][0]),
        image_height=int(d["size"][1]),
        reasons=tuple(ReasonCode(c) for c in d["reasons"]),
    )


def encode_card(card: HeldCard) -> bytes:
    """The card as bytes, to be encrypted at once. The template must carry every embedding the
    matcher may need (`FaceComparer.extend`): its pixels are not kept."""
    doc = card.document
    policy = doc.policy
    data = {
        "v": _FORMAT,
        "observation": _observation(card.template.observation),
        "embeddings": {
            model: base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
            for model, vec in card.template.embeddings.items()
        },
        "document": {
            "status": doc.status.value,
            "reasons": [c.value for c in doc.reasons],
            "type": doc.type,
            "checks": [[n, ok, c.value] for n, ok, c in doc.checks],
            "subject": doc.subject,
            "policy": None
            if policy is None
            else {
                "decision": policy.decision,
                "reasons": [c.value for c in policy.reasons],
                "rules_version": policy.rules_version,
                "details": policy.details,
            },
        },
        "identity": card.registry_identity,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def decode_card(raw: bytes) -> HeldCard:
    """The inverse of `encode_card` (ValueError / KeyError on anything else)."""
    data = json.loads(raw)
    if data.get("v") != _FORMAT:
        raise ValueError("unknown held-card format")
    embeddings = {
        str(model): np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
        for model, text in data["embeddings"].items()
    }
    d = data["document"]
    p = d["policy"]
    policy = (
        None
        if p is None
        else PolicyOutcome(
            decision=p["decision"],
            reasons=tuple(ReasonCode(c) for c in p["reasons"]),
            rules_version=str(p["rules_version"]),
            details=dict(p["details"]),
        )
    )
    document = DocumentEvidence(
        status=DocumentStatus(d["status"]),
        reasons=tuple(ReasonCode(c) for c in d["reasons"]),
        type=d["type"],
        checks=tuple((str(n), bool(ok), ReasonCode(c)) for n, ok, c in d["checks"]),
        subject=d["subject"],
        policy=policy,
    )
    template = FaceTemplate(_observation_from(data["observation"]), embeddings)
    return HeldCard(template, document, data["identity"])
