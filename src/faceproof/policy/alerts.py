"""New-line alerts: tell the identity holder whenever a line is opened in their name.

A pluggable `Notifier` sends; `OutboxNotifier` writes to a local JSON-lines outbox (the service
writes there; `faceproof outbox` reads it); `SmtpNotifier` sends e-mail and `HttpSmsNotifier`
posts to an SMS gateway. `deliver_outbox` relays the outbox through such a gateway and records
each outcome beside it (sent, or retry with a reason code), so a gateway that is down delays an
alert and never fails an activation. `send_line_alert` deduplicates (one alert per carrier and
line, however often the activation is confirmed) and words the message so it helps the holder
and not an attacker: the carrier and the date, what to do, and nothing else (no store, no line
number, no name, no ID number).
"""

from __future__ import annotations

import hashlib
import json
import os
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from faceproof.errors import ServiceError
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    from faceproof.settings import Settings

__all__ = [
    "ALERT_SUBJECT",
    "DeliveryReport",
    "HttpSmsNotifier",
    "LineAlert",
    "Notifier",
    "OutboxNotifier",
    "SmtpNotifier",
    "deliver_outbox",
    "gateway_from_settings",
    "read_deliveries",
    "read_outbox",
    "render_alert",
    "send_line_alert",
]

# The same for every alert: a subject says no more than the body (no carrier, date or name).
ALERT_SUBJECT = "[명의도용 알림] 새 휴대전화 회선 개통 / [Identity alert] New mobile line opened"


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
        self.append(asdict(alert))

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

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


class SmtpNotifier:
    """An e-mail gateway adapter over SMTP (stdlib `smtplib`), one connection per alert.

    `security` is "starttls" (port 587), "ssl" (implicit TLS, port 465) or "none" (a local
    relay only); certificates are verified with `ssl_context` (default: the system's). Every
    SMTP or network failure, and a recipient that is not an e-mail address, is `alert_not_sent`
    so that the caller retries. Deduplication is per process, like `HttpSmsNotifier`; the
    outbox relay (`deliver_outbox`) keeps it across runs.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        security: Literal["starttls", "ssl", "none"] = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._security = security
        self._login = (username, password or "") if username else None
        self._timeout = timeout_s
        self._tls = ssl_context or ssl.create_default_context()
        self._sent: set[str] = set()

    def message(self, alert: LineAlert) -> EmailMessage:
        """The e-mail for an alert: the fixed subject and the Korean, then English, text."""
        recipient = alert.recipient.strip()
        local, at, domain = recipient.rpartition("@")
        if not (at and local and "." in domain) or any(c in recipient for c in " \r\n,;<>"):
            raise ServiceError(ReasonCode.ALERT_NOT_SENT, "the recipient is not an e-mail address")
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = recipient
        message["Subject"] = ALERT_SUBJECT
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        message["Content-Language"] = "ko, en"
        message.set_content(f"{alert.message_ko}\n\n{alert.message_en}\n", charset="utf-8")
        return message

    def send(self, alert: LineAlert) -> None:
        message = self.message(alert)
        try:
            smtp: smtplib.SMTP
            if self._security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=self._tls
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with smtp:
                if self._security == "starttls":
                    smtp.starttls(context=self._tls)
                if self._login is not None:
                    smtp.login(*self._login)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            # The type only: SMTP replies may echo the recipient's address.
            raise ServiceError(ReasonCode.ALERT_NOT_SENT, type(exc).__name__) from exc
        self._sent.add(alert.dedup_key)

    def already_sent(self, dedup_key: str) -> bool:
        return dedup_key in self._sent


def gateway_from_settings(settings: Settings, via: Literal["smtp", "sms"]) -> Notifier:
    """The alert gateway configured by `FACEPROOF_SMTP_*` or `FACEPROOF_SMS_GATEWAY_*`."""
    if via == "smtp":
        if not settings.smtp_host or not settings.smtp_sender:
            raise ServiceError(
                ReasonCode.ALERT_NOT_SENT, "FACEPROOF_SMTP_HOST and FACEPROOF_SMTP_SENDER are unset"
            )
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpNotifier(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            timeout_s=settings.alert_timeout_seconds,
        )
    if not settings.sms_gateway_url:
        raise ServiceError(ReasonCode.ALERT_NOT_SENT, "FACEPROOF_SMS_GATEWAY_URL is unset")
    token = settings.sms_gateway_token.get_secret_value() if settings.sms_gateway_token else ""
    return HttpSmsNotifier(
        settings.sms_gateway_url, token, timeout_s=settings.alert_timeout_seconds
    )


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int  # delivered now
    retry: int  # failed now with a reason code; the next run tries again
    done: int  # delivered by an earlier run (not sent twice)


def _deliveries_path(outbox: Path) -> Path:
    return outbox.with_name(outbox.name + ".deliveries.jsonl")


def read_deliveries(outbox: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The latest delivery record per alert (`dedup_key`): status "sent" or "retry"."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_outbox(_deliveries_path(Path(outbox))):
        latest[record["dedup_key"]] = record
    return latest


def deliver_outbox(
    outbox: str | os.PathLike[str],
    gateway: Notifier,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeliveryReport:
    """Send every outbox alert not yet delivered through `gateway`, recording each outcome.

    A failure is recorded as `retry` with its reason code (never raised): one unreachable
    gateway or bad address does not stop the other alerts. Run one relay at a time.
    """
    path = Path(outbox)
    delivered = {k for k, r in read_deliveries(path).items() if r["status"] == "sent"}
    sent = retry = done = 0
    log = OutboxNotifier(_deliveries_path(path))  # the same append-only JSON-lines writer
    for record in read_outbox(path):
        alert = LineAlert(**record)
        if alert.dedup_key in delivered:
            done += 1
            continue
        entry: dict[str, Any] = {"dedup_key": alert.dedup_key, "at": clock().isoformat()}
        try:
            gateway.send(alert)
        except ServiceError as exc:
            entry |= {"status": "retry", "code": exc.code.value, "detail": exc.detail}
            retry += 1
        else:
            entry |= {"status": "sent"}
            delivered.add(alert.dedup_key)
            sent += 1
        log.append(entry)
    return DeliveryReport(sent, retry, done)
