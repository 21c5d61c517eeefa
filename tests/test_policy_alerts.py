"""New-line alerts: deduplicated, harmless wording, outbox readable from the CLI, and the outbox
delivered through real gateways on loopback: an SMTP server (aiosmtpd) and an SMS gateway."""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Header

from faceproof.cli.main import main
from faceproof.errors import ServiceError
from faceproof.policy.alerts import (
    ALERT_SUBJECT,
    DeliveryReport,
    HttpSmsNotifier,
    LineAlert,
    Notifier,
    OutboxNotifier,
    SmtpNotifier,
    deliver_outbox,
    read_deliveries,
    read_outbox,
    render_alert,
    send_line_alert,
)
from faceproof.reasons import ReasonCode
from test_policy_registry import free_port, serving

OPENED = date(2026, 11, 27)


def send(notifier: Notifier, line_id: str = "010-0000-1111") -> bool:
    return send_line_alert(
        notifier,
        identity="pseudonym-1",
        recipient="+82-10-2222-3333",
        carrier="Example Mobile",
        line_id=line_id,
        opened_on=OPENED,
    )


def test_an_activation_lands_in_the_outbox_once(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path / "outbox.jsonl")
    assert send(outbox) is True
    assert send(outbox) is False
    assert send(outbox, "010-0000-9999") is True
    alerts = read_outbox(tmp_path / "outbox.jsonl")
    assert len(alerts) == 2
    assert alerts[0]["recipient"] == "+82-10-2222-3333"
    assert alerts[0]["opened_on"] == "2026-11-27"


def test_the_message_helps_the_holder_and_not_an_attacker() -> None:
    ko, en = render_alert("Example Mobile", OPENED)
    for text in (ko, en):
        assert "Example Mobile" in text
        assert "2026-11-27" in text
        assert "M-Safer" in text  # what to do next
        assert "010-0000-1111" not in text  # no line number
        assert "store" not in text.lower()
        assert "매장" not in text


def test_faceproof_outbox_prints_the_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outbox.jsonl"
    send(OutboxNotifier(path))
    assert main(["outbox", "--path", str(path), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["carrier"] == "Example Mobile"
    assert main(["outbox", "--path", str(tmp_path / "none.jsonl")]) == 0
    assert "empty" in capsys.readouterr().out


def test_sms_gateway_adapter_posts_and_deduplicates() -> None:
    seen: list[dict[str, str]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer gw-token"
        seen.append(json.loads(request.content))
        return httpx.Response(202)

    sms = HttpSmsNotifier(
        "https://sms.example/send", "gw-token", transport=httpx.MockTransport(gateway)
    )
    try:
        assert send(sms) is True
        assert send(sms) is False
    finally:
        sms.close()
    assert len(seen) == 1
    assert seen[0]["to"] == "+82-10-2222-3333"
    assert "Example Mobile" in seen[0]["text"]


def test_a_failing_gateway_is_a_typed_error_and_can_be_retried() -> None:
    calls = {"n": 0}

    def gateway(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(503 if calls["n"] == 1 else 200)

    sms = HttpSmsNotifier("https://sms.example/send", "t", transport=httpx.MockTransport(gateway))
    try:
        with pytest.raises(ServiceError) as info:
            send(sms)
        assert info.value.code is ReasonCode.ALERT_NOT_SENT
        assert send(sms) is True
    finally:
        sms.close()


# --- real gateways on loopback: an SMTP server (aiosmtpd) and an SMS gateway (FastAPI) --------

E_MAIL = "holder@example.org"


@dataclass
class Mailbox:
    """What a local SMTP server received, and what it answers to DATA next."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # e.g. "451 ..." once; then 250

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def outbox_with_two_alerts(path: Path) -> None:
    outbox = OutboxNotifier(path)
    for line in ("010-0000-1111", "010-0000-1111", "010-0000-9999"):  # one confirmed twice
        send_line_alert(
            outbox,
            identity="pseudonym-1",
            recipient=E_MAIL,
            carrier="Example Mobile",
            line_id=line,
            opened_on=OPENED,
        )


def test_smtp_gateway_delivers_each_outbox_alert_once(
    tmp_path: Path, smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    path = tmp_path / "outbox.jsonl"
    outbox_with_two_alerts(path)
    mail = SmtpNotifier("127.0.0.1", port, "alerts@carrier.example", security="none")
    assert deliver_outbox(path, mail) == DeliveryReport(sent=2, retry=0, done=0)
    # A second run, even by a fresh process's notifier, sends nothing again.
    fresh = SmtpNotifier("127.0.0.1", port, "alerts@carrier.example", security="none")
    assert deliver_outbox(path, fresh) == DeliveryReport(sent=0, retry=0, done=2)
    assert len(mailbox.received) == 2
    recipients, message = mailbox.received[0]
    assert recipients == [E_MAIL]
    assert message["To"] == E_MAIL
    assert message["From"] == "alerts@carrier.example"
    assert message["Subject"] == ALERT_SUBJECT
    body = message.get_content()
    ko, en = render_alert("Example Mobile", OPENED)
    assert ko in body  # both languages, exactly the outbox wording
    assert en in body
    assert "010-0000" not in body + str(message)  # no line number anywhere in the mail
    assert {r["status"] for r in read_deliveries(path).values()} == {"sent"}


def test_an_smtp_failure_is_a_retry_in_the_outbox_not_a_crash(
    tmp_path: Path, smtp_server: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    mailbox, port = smtp_server
    path = tmp_path / "outbox.jsonl"
    outbox_with_two_alerts(path)
    mailbox.replies.append("451 4.3.0 try again later")
    mail = SmtpNotifier("127.0.0.1", port, "alerts@carrier.example", security="none")
    assert deliver_outbox(path, mail) == DeliveryReport(sent=1, retry=1, done=0)
    retries = [r for r in read_deliveries(path).values() if r["status"] == "retry"]
    assert len(retries) == 1
    assert retries[0]["code"] == ReasonCode.ALERT_NOT_SENT.value
    assert retries[0]["detail"] == "SMTPDataError"
    assert main(["outbox", "--path", str(path), "--json"]) == 0
    shown = [json.loads(line)["delivery"] for line in capsys.readouterr().out.splitlines()]
    assert sorted(shown) == ["retry", "sent"]
    # The next run sends only what is still due.
    assert deliver_outbox(path, mail) == DeliveryReport(sent=1, retry=0, done=1)
    assert len(mailbox.received) == 2


def test_an_unreachable_smtp_server_is_a_typed_error(tmp_path: Path) -> None:
    mail = SmtpNotifier("127.0.0.1", free_port(), "a@carrier.example", timeout_s=2)
    with pytest.raises(ServiceError) as info:
        mail.send(LineAlert("k", E_MAIL, "Example Mobile", "2026-11-27", "ko", "en"))
    assert info.value.code is ReasonCode.ALERT_NOT_SENT
    assert info.value.detail == "ConnectionRefusedError"
    path = tmp_path / "outbox.jsonl"
    outbox_with_two_alerts(path)
    assert deliver_outbox(path, mail) == DeliveryReport(sent=0, retry=2, done=0)


def test_a_phone_number_is_not_mailed() -> None:
    mail = SmtpNotifier("127.0.0.1", 25, "a@carrier.example")
    with pytest.raises(ServiceError) as info:
        send(mail)  # the recipient is "+82-10-2222-3333"
    assert info.value.code is ReasonCode.ALERT_NOT_SENT


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate, and a client one trusting it."""
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    return server_tls, ssl.create_default_context(cafile=str(cert))


def test_starttls_with_login_and_certificate_verification(tmp_path: Path) -> None:
    server_tls, trusted = tls_pair(tmp_path)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, auth_data: object
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        mail = SmtpNotifier(
            "127.0.0.1",
            port,
            "a@carrier.example",
            username="relay",
            password="s3cret",
            ssl_context=trusted,
        )
        alert = LineAlert("k1", E_MAIL, "Example Mobile", "2026-11-27", "ko", "en")
        mail.send(alert)
        assert logins == [(b"relay", b"s3cret")]
        assert [r for r, _ in mailbox.received] == [[E_MAIL]]
        # A server whose certificate is not trusted is refused, as a typed error.
        untrusting = SmtpNotifier("127.0.0.1", port, "a@carrier.example", security="starttls")
        with pytest.raises(ServiceError) as info:
            untrusting.send(alert)
        assert info.value.detail == "SSLCertVerificationError"
    finally:
        controller.stop()


def test_faceproof_outbox_deliver_smtp_from_settings(
    tmp_path: Path,
    smtp_server: tuple[Mailbox, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox, port = smtp_server
    path = tmp_path / "outbox.jsonl"
    outbox_with_two_alerts(path)
    monkeypatch.setenv("FACEPROOF_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("FACEPROOF_SMTP_PORT", str(port))
    monkeypatch.setenv("FACEPROOF_SMTP_SECURITY", "none")
    monkeypatch.setenv("FACEPROOF_SMTP_SENDER", "alerts@carrier.example")
    assert main(["outbox", "--path", str(path), "--deliver", "smtp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sent": 2, "retry": 0, "already_sent": 0}
    assert len(mailbox.received) == 2
    mailbox.replies.append("554 no")  # nothing is due: the server is not even asked
    assert main(["outbox", "--path", str(path), "--deliver", "smtp"]) == 0
    assert "sent 0, retry 0, already_sent 2" in capsys.readouterr().out
    monkeypatch.delenv("FACEPROOF_SMTP_HOST")
    assert main(["outbox", "--path", str(path), "--deliver", "smtp"]) == 4  # not configured
    assert "alert_not_sent" in capsys.readouterr().err


@pytest.fixture
def sms_gateway() -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []
    app = FastAPI()

    @app.post("/send", status_code=202)
    def send_sms(body: dict[str, str], authorization: Annotated[str, Header()]) -> None:
        assert authorization == "Bearer gw-token"
        received.append(body)

    with serving(app) as url:
        yield f"{url}/send", received


def test_sms_gateway_over_http_delivers_the_outbox_once(
    tmp_path: Path, sms_gateway: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = sms_gateway
    path = tmp_path / "outbox.jsonl"
    send(OutboxNotifier(path))
    send(OutboxNotifier(path))  # confirmed twice: one alert
    sms = HttpSmsNotifier(url, "gw-token", timeout_s=2)
    try:
        assert deliver_outbox(path, sms) == DeliveryReport(sent=1, retry=0, done=0)
        assert deliver_outbox(path, sms) == DeliveryReport(sent=0, retry=0, done=1)
    finally:
        sms.close()
    assert len(received) == 1
    assert received[0]["to"] == "+82-10-2222-3333"
    ko, en = render_alert("Example Mobile", OPENED)
    assert received[0]["text"] == f"{ko}\n{en}"


def test_refused_settings_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEPROOF_SMTP_PORT", "0")  # out of range
    path = tmp_path / "outbox.jsonl"
    assert main(["outbox", "--path", str(path), "--deliver", "smtp"]) == 2
    assert "settings refused" in capsys.readouterr().err


def test_implicit_tls(tmp_path: Path) -> None:
    server_tls, trusted = tls_pair(tmp_path)
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=server_tls)
    controller.start()
    try:
        mail = SmtpNotifier(
            "127.0.0.1", port, "a@carrier.example", security="ssl", ssl_context=trusted
        )
        mail.send(LineAlert("k1", E_MAIL, "Example Mobile", "2026-11-27", "ko", "en"))
    finally:
        controller.stop()
    assert [r for r, _ in mailbox.received] == [[E_MAIL]]
