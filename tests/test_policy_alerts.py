"""New-line alerts: deduplicated, harmless wording, outbox readable from the CLI, SMS adapter."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest

from faceproof.cli.main import main
from faceproof.errors import ServiceError
from faceproof.policy.alerts import (
    HttpSmsNotifier,
    Notifier,
    OutboxNotifier,
    read_outbox,
    render_alert,
    send_line_alert,
)
from faceproof.reasons import ReasonCode

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
