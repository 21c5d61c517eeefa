"""Signed receipts: compact JWS with Ed25519, JWKS, strict and opaque verification, CLI."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from faceproof.cli.service import add_parsers, run
from faceproof.privacy import subject_id
from faceproof.privacy.receipts import (
    ReceiptError,
    ReceiptSigner,
    b64url_decode,
    b64url_encode,
    load_or_create_signing_key,
    verify_receipt,
)
from faceproof.reasons import ReasonCode

CLAIMS: dict[str, Any] = {
    "sid": "ses_1",
    "tenant": "ten_1",
    "decision": "review",
    "reasons": ["match_accepted", "liveness_not_performed"],
    "assurance": {"models": ["sface-2021dec-int8bq"], "threshold": 0.5, "fmr_target": 1e-4},
    "subject": None,
    "decided_at": "2026-01-01T00:00:00+00:00",
}


@pytest.fixture(scope="module")
def signer() -> ReceiptSigner:
    return ReceiptSigner(Ed25519PrivateKey.generate())


def _b64json(value: Any) -> str:
    return b64url_encode(json.dumps(value).encode())


def test_round_trip(signer: ReceiptSigner) -> None:
    token = signer.sign(CLAIMS)
    assert token.count(".") == 2
    assert "=" not in token
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": signer.kid, "typ": "faceproof-receipt+jws"}
    assert verify_receipt(token, signer.jwks()) == CLAIMS


def test_jwks_is_public_okp_ed25519(signer: ReceiptSigner) -> None:
    (jwk,) = signer.jwks()["keys"]
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA"
    assert "d" not in jwk
    assert len(b64url_decode(jwk["x"])) == 32


def _expect_invalid(token: str, jwks: dict[str, Any]) -> None:
    with pytest.raises(ReceiptError) as info:
        verify_receipt(token, jwks)
    assert info.value.code is ReasonCode.RECEIPT_INVALID
    assert str(info.value) == "receipt_invalid: The receipt's signature is not valid."


def test_tampered_payload(signer: ReceiptSigner) -> None:
    h, _, s = signer.sign(CLAIMS).split(".")
    forged = _b64json({**CLAIMS, "decision": "pass"})
    _expect_invalid(f"{h}.{forged}.{s}", signer.jwks())


def test_tampered_signature(signer: ReceiptSigner) -> None:
    h, p, s = signer.sign(CLAIMS).split(".")
    raw = bytearray(b64url_decode(s))
    raw[0] ^= 1
    _expect_invalid(f"{h}.{p}.{b64url_encode(bytes(raw))}", signer.jwks())


def test_tampered_header(signer: ReceiptSigner) -> None:
    _, p, s = signer.sign(CLAIMS).split(".")
    header = {"alg": "EdDSA", "kid": signer.kid, "typ": "faceproof-receipt+jws", "x": 1}
    _expect_invalid(f"{_b64json(header)}.{p}.{s}", signer.jwks())


def test_wrong_key(signer: ReceiptSigner) -> None:
    other = ReceiptSigner(Ed25519PrivateKey.generate())
    _expect_invalid(other.sign(CLAIMS), signer.jwks())
    # Same kid in the JWKS but another key's x: the signature must still fail.
    jwk = {**other.jwk(), "kid": signer.kid}
    _expect_invalid(signer.sign(CLAIMS), {"keys": [jwk]})


def test_alg_none_rejected(signer: ReceiptSigner) -> None:
    header = {"alg": "none", "kid": signer.kid, "typ": "faceproof-receipt+jws"}
    _expect_invalid(f"{_b64json(header)}.{_b64json(CLAIMS)}.", signer.jwks())


def test_alg_hs256_with_public_key_as_secret_rejected(signer: ReceiptSigner) -> None:
    header = {"alg": "HS256", "kid": signer.kid, "typ": "faceproof-receipt+jws"}
    signing_input = f"{_b64json(header)}.{_b64json(CLAIMS)}"
    secret = signer.jwk()["x"].encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    _expect_invalid(f"{signing_input}.{b64url_encode(mac)}", signer.jwks())


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30.e30", "x" * 70000])
def test_garbage_rejected(signer: ReceiptSigner, token: str) -> None:
    _expect_invalid(token, signer.jwks())


def test_padded_base64_rejected(signer: ReceiptSigner) -> None:
    h, p, s = signer.sign(CLAIMS).split(".")
    padded = base64.urlsafe_b64encode(b64url_decode(s)).decode()
    assert padded.endswith("=")
    _expect_invalid(f"{h}.{p}.{padded}", signer.jwks())


def test_bad_jwks_rejected(signer: ReceiptSigner) -> None:
    token = signer.sign(CLAIMS)
    for jwks in ({}, {"keys": "x"}, {"keys": [{"kty": "RSA", "kid": signer.kid}]}, []):
        _expect_invalid(token, jwks)  # type: ignore[arg-type]


def test_dev_key_created_0600_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "receipt.pem"
    with pytest.raises(FileNotFoundError):
        load_or_create_signing_key(path, create=False)
    first = load_or_create_signing_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(path, create=False)
    assert again.kid == first.kid


def test_subject_id_is_keyed_and_tenant_scoped() -> None:
    a = subject_id(b"k" * 32, "ten_1", "M12345678")
    assert a == subject_id(b"k" * 32, "ten_1", " m12345678 ")
    assert a != subject_id(b"k" * 32, "ten_2", "M12345678")
    assert a != subject_id(b"j" * 32, "ten_1", "M12345678")
    assert "12345678" not in a


# --- CLI ----------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="faceproof")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    code = run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_receipt_verify(
    signer: ReceiptSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(signer.jwks()))
    token = signer.sign(CLAIMS)
    code, out, _ = _cli(capsys, "receipt", "verify", token, "--jwks", str(jwks_file))
    assert code == 0
    assert json.loads(out)["claims"]["decision"] == "review"

    receipt_file = tmp_path / "receipt.jws"
    receipt_file.write_text(token + "\n")
    code, _, _ = _cli(capsys, "receipt", "verify", str(receipt_file), "--jwks", str(jwks_file))
    assert code == 0

    h, _, s = token.split(".")
    forged = f"{h}.{_b64json({**CLAIMS, 'decision': 'pass'})}.{s}"
    code, out, err = _cli(capsys, "receipt", "verify", forged, "--jwks", str(jwks_file))
    assert code == 1
    assert out == ""
    assert err.startswith("receipt_invalid")


def test_cli_refuses_non_loopback_jwks_url(
    signer: ReceiptSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    token = signer.sign(CLAIMS)
    code, _, err = _cli(
        capsys, "receipt", "verify", token, "--jwks", "https://example.com/.well-known/jwks.json"
    )
    assert code == 2
    assert "loopback" in err
