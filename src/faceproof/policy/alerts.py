"""New-line alerts: tell the identity holder whenever a line is opened in their name.

A pluggable `Notifier` sends; `OutboxNotifier` writes to a local JSON-lines outbox for
development (`faceproof outbox` reads it); `HttpSmsNotifier` posts to an SMS gateway.
`send_line_alert` deduplicates (one alert per carrier and line, however often the activation is
confirmed) and words the message so it helps the holder and not an attacker: the carrier and the
date, what to do, and nothing else (no store, no line number, no name, no ID number).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import httpx

from faceproof.errors import ServiceError
from faceproof.reasons import ReasonCode

__all__ = [
    "HttpSmsNotifier",
    "LineAlert",
    "Notifier",
    "OutboxNotifier",
    "read_outbox",
    "render_alert",
    "send_line_alert",
]


@dataclass(frozen=True, slots=True)
class LineAlert:
    dedup_key: str  # hash of (identity, carrier, line): no personal data
    recipient: str  # the holder's contact (phone or e-mail) as the carrier has it on file
    carrier: str
    opened_on: str  # ISO date only: no time, no store
    message_ko: str
    message_en: str


class Notifier(Protocol):
    def send(self, alert: LineAlert) -> None: ...
    def already_sent(self, dedup_key: str) -> bool: ...


def render_alert(carrier: str, opened_on: date) -> tuple[str, str]:
    ko = (
        f"[명의도용 알림] {opened_on.isoformat()}에 {carrier}에서 회원님 명의로 새 휴대전화 회선이 "
        "개통되었습니다. 본인이 아니면 해당 통신사 고객센터에 바로 신고하고, "
        "명의도용방지서비스(M-Safer)에서 신규 가입을 차단하세요."
    )
    en = (
        f"[Identity alert] A new mobile line was opened in your name at {carrier} on "
        f"{opened_on.isoformat()}. If this was not you, report it to the carrier now and block "
        "new subscriptions in your name (M-Safer)."
    )
    return ko, en


def _dedup_key(identity: str, carrier: str, line_id: str) -> str:
    return hashlib.sha256(f"{identity}\x1f{carrier}\x1f{line_id}".encode()).hexdigest()


def send_line_alert(
    notifier: Notifier,
    *,
    identity: str,
    recipient: str,
    carrier: str,
    line_id: str,
    opened_on: date,
) -> bool:
    """Send the alert unless this line's alert was already sent; True when sent now."""
    key = _dedup_key(identity, carrier, line_id)
    if notifier.already_sent(key):
        return False
    ko, en = render_alert(carrier, opened_on)
    notifier.send(LineAlert(key, recipient, carrier, opened_on.isoformat(), ko, en))
    return True


class OutboxNotifier:
    """Development notifier: one JSON object per line in a local outbox file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, alert: LineAlert) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(alert), ensure_ascii=False) + "\n")

    def already_sent(self, dedup_key: str) -> bool:
        return any(a["dedup_key"] == dedup_key for a in read_outbox(self.path))


def read_outbox(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    outbox = Path(path)
    if not outbox.exists():
        return []
    lines = outbox.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class HttpSmsNotifier:
    """An SMS gateway adapter: POST {to, text} with a bearer token; bounded timeout.

    Deduplication is kept in memory per process; run one sender (or put a shared outbox table
    in front) when several workers send.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            timeout=timeout_s, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )
        self._url = url
        self._sent: set[str] = set()

    def send(self, alert: LineAlert) -> None:
        try:
            response = self._client.post(
                self._url,
                json={"to": alert.recipient, "text": f"{alert.message_ko}\n{alert.message_en}"},
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceError(ReasonCode.ALERT_NOT_SENT, type(exc).__name__) from exc
        self._sent.add(alert.dedup_key)

    def already_sent(self, dedup_key: str) -> bool:
        return dedup_key in self._sent

    def close(self) -> None:
        self._client.close()
