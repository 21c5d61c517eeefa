"""The card held in process memory between the document step and the face capture.

`HeldCard`: the face template of the card's cut-out portrait and the document's evidence
(status, reason codes, checks, type, pseudonymous subject id; no number, no field values).
Never written to the database, a log or a file. Entries expire with the capture token and are
dropped as soon as a decision is made. A restart (or another worker) loses them: the capture
client then gets `session_state` and uploads the document again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from faceproof.faces.types import FaceTemplate
from faceproof.verification import DocumentEvidence

__all__ = ["HeldCard", "TemplateStore"]


@dataclass(frozen=True, slots=True)
class HeldCard:
    template: FaceTemplate
    document: DocumentEvidence
    # The card's number as the line registry needs it (it keeps only its own HMAC): held in
    # memory for the policy re-check before a pass and to report failed face checks; never
    # written anywhere, never in a repr.
    registry_identity: str | None = field(default=None, repr=False)


class TemplateStore:
    def __init__(self, clock: Callable[[], datetime], max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._items: dict[str, tuple[HeldCard, datetime]] = {}
        self._lock = threading.Lock()

    def put(self, session_id: str, card: HeldCard, expires_at: datetime) -> None:
        with self._lock:
            self._sweep()
            if len(self._items) >= self._max:
                oldest = min(self._items, key=lambda k: self._items[k][1])
                del self._items[oldest]
            self._items[session_id] = (card, expires_at)

    def get(self, session_id: str) -> HeldCard | None:
        with self._lock:
            item = self._items.get(session_id)
            if item is None:
                return None
            if item[1] <= self._clock():
                del self._items[session_id]
                return None
            return item[0]

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
