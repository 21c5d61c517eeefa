"""Issuer genuineness check (진위확인): the simulator as a real HTTP server on loopback.

Registry entries are synthetic (numbers with hand-computed check digits, see
test_documents_validators.py); nothing here is real personal data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from faceproof.documents import DocumentType
from faceproof.documents.issuer import (
    HttpIssuerCheck,
    IssuerQuery,
    IssuerRegistry,
    make_server,
    serve_in_thread,
)
from faceproof.reasons import ReasonCode

T = DocumentType
REGISTRY = {
    "cards": [
        {"type": "kr_resident_card", "name": "홍길동", "number": "900101-1234568",
         "issue_date": "2015-03-04", "status": "valid"},
        {"type": "kr_resident_card", "name": "김철수", "number": "050505-3000001",
         "issue_date": "2020-01-02", "status": "valid"},
        {"type": "kr_resident_card", "name": "김철수", "number": "050505-3000001",
         "issue_date": "2024-06-07", "status": "valid"},
        {"type": "kr_residence_card", "name": "NGUYEN VAN AN", "number": "900101-5234561",
         "issue_date": "2023-01-02", "status": "lost"},
        {"type": "kr_driver_license", "name": "홍길동", "number": "900101-1234568",
         "license_number": "11-10-123456-01", "issue_date": "2019-05-06",
         "status": "revoked"},
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def issuer_url() -> Iterator[str]:
    server = make_server(IssuerRegistry.from_json(REGISTRY))
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("query", "ok", "code"),
    [
        (IssuerQuery(T.KR_RESIDENT_CARD, "홍길동", "9001011234568", "2015-03-04"), True,
         ReasonCode.ISSUER_CONFIRMED),
        (IssuerQuery(T.KR_RESIDENT_CARD, "홍길동", "900101-1234568", "2016-03-04"), False,
         ReasonCode.ISSUER_NOT_FOUND),  # wrong issue date
        (IssuerQuery(T.KR_RESIDENT_CARD, "홍길순", "900101-1234568", "2015-03-04"), False,
         ReasonCode.ISSUER_NOT_FOUND),  # wrong name
        (IssuerQuery(T.KR_RESIDENT_CARD, "김철수", "050505-3000001", "2020-01-02"), False,
         ReasonCode.ISSUER_SUPERSEDED),  # a newer card was issued
        (IssuerQuery(T.KR_RESIDENT_CARD, "김철수", "050505-3000001", "2024-06-07"), True,
         ReasonCode.ISSUER_CONFIRMED),
        (IssuerQuery(T.KR_RESIDENCE_CARD, "NGUYEN VAN AN", "900101-5234561", "2023-01-02"),
         False, ReasonCode.ISSUER_LOST),
        (IssuerQuery(T.KR_DRIVER_LICENSE, "홍길동", license_number="111012345601"), False,
         ReasonCode.ISSUER_REVOKED),
        (IssuerQuery(T.KR_MERIT_CARD, "홍길동", "900101-1234568", "2015-03-04"), False,
         ReasonCode.ISSUER_NOT_FOUND),  # same number, other card type
    ],
)  # fmt: skip
def test_simulator_answers_over_http(
    issuer_url: str, query: IssuerQuery, ok: bool, code: ReasonCode
) -> None:
    with HttpIssuerCheck(issuer_url) as issuer:
        check = issuer.check(query)
    assert (check.ok, check.code) == (ok, code)
    assert check.name == "issuer"


def test_malformed_requests_are_400(issuer_url: str) -> None:
    assert httpx.get(f"{issuer_url}/healthz").json() == {"status": "ok"}
    assert httpx.post(f"{issuer_url}/v1/verify", content=b"{").status_code == 400
    bad = httpx.post(f"{issuer_url}/v1/verify", json={"type": "library_card", "name": "x"})
    assert bad.status_code == 400
    assert httpx.post(f"{issuer_url}/v1/other", json={}).status_code == 404


def test_unreachable_issuer_is_a_warning_not_a_crash() -> None:
    server = make_server(IssuerRegistry.from_json(REGISTRY))
    port = server.server_address[1]
    server.server_close()  # nothing listens there any more
    with HttpIssuerCheck(f"http://127.0.0.1:{port}", timeout=1.0) as issuer:
        check = issuer.check(IssuerQuery(T.KR_RESIDENT_CARD, "홍길동", "900101-1234568"))
    assert (check.ok, check.code) == (False, ReasonCode.ISSUER_UNAVAILABLE)
    assert not check.rejects  # a warning: the case goes to review


def test_query_repr_hides_the_number() -> None:
    q = IssuerQuery(T.KR_RESIDENT_CARD, "홍길동", "900101-1234568", "2015-03-04")
    assert "1234568" not in repr(q)
    assert "홍길동" not in repr(q)


def test_revoked_specimen_read_from_a_photo_through_the_cli_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`faceproof document issuer-sim` as a real process; `document read --issuer` asks it."""
    import argparse

    from faceproof.cli.documents import add_parsers
    from faceproof.documents.specimen import photograph, render_specimen

    today = date(2026, 11, 27)
    spec = render_specimen(T.KR_RESIDENT_CARD, seed=8, today=today)
    photo = photograph(spec, seed=8)
    image = tmp_path / "card.jpg"
    photo.image.save(image, format="JPEG", quality=92)
    registry = tmp_path / "cards.json"
    card = {k: spec.fields[k] for k in ("number", "issue_date")}
    registry.write_text(
        json.dumps({"cards": [{"type": "kr_resident_card", "name": spec.fields["name_ko"],
                               **card, "status": "revoked"}]}, ensure_ascii=False),
        "utf-8",
    )  # fmt: skip
    code = (
        "import sys; from faceproof.cli.documents import add_parsers; import argparse; "
        "p = argparse.ArgumentParser(); add_parsers(p.add_subparsers(dest='command')); "
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "document", "issuer-sim", "--registry", str(registry),
         "--port", "0"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.strip().rsplit(" ", 1)[-1]
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # pragma: no cover - the server is up once it has printed
        parser = argparse.ArgumentParser()
        add_parsers(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["document", "read", str(image), "--json", "--today",
                                  "2026-11-27", "--issuer", url])  # fmt: skip
        assert args.handler(args) == 1  # not accepted
        out = json.loads(capsys.readouterr().out)
        assert "issuer_revoked" in out["reasons"]
        issuer_check = next(c for c in out["checks"] if c["name"] == "issuer")
        assert issuer_check["ok"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stderr is not None:
                rest = proc.stderr.read()
                proc.stderr.close()
    assert spec.fields["number"] not in rest  # the simulator logs no numbers
