"""Receipt key rotation: sign with key A, rotate to key B with A retired; the JWKS publishes both,
receipts signed by A still verify (in code and with `faceproof receipt verify`), new receipts are
signed by B. Retired keys come from `FACEPROOF_RECEIPT_PREVIOUS_KEYS` (PEM files, public or
private, or folders of them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import CliRunner
from faceproof.api import create_app
from faceproof.privacy.receipts import (
    ReceiptError,
    ReceiptSigner,
    b64url_decode,
    key_id,
    load_or_create_signing_key,
    load_verification_keys,
    verify_receipt,
)
from faceproof.settings import Settings
from faceproof.storage.tenants import Scope, create_api_key, create_tenant
from test_api import SESSION_BODY, T0, TestClient


def _write_private(path: Path, key: Ed25519PrivateKey) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _write_public(path: Path, key: Ed25519PrivateKey) -> Path:
    """What `openssl pkey -in old.pem -pubout -out old.pub.pem` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _kid_of(receipt: str) -> str:
    header = json.loads(b64url_decode(receipt.split(".")[0]))
    kid: str = header["kid"]
    return kid


@contextmanager
def _service(settings: Settings) -> Iterator[TestClient]:
    # The signer as `create_app` builds it from these settings (key path and retired keys).
    signer = load_or_create_signing_key(
        settings.effective_receipt_key_path,
        create=False,
        previous=settings.receipt_previous_key_paths,
    )
    with TestClient(create_app(settings, signer=signer)) as client:
        yield client


def _declined_receipt(client: TestClient, api_key: str) -> tuple[str, str]:
    """A session decided at once (consent declined): its id and its receipt."""
    auth = {"Authorization": f"Bearer {api_key}"}
    created = client.post("/v1/sessions", json=SESSION_BODY, headers=auth)
    assert created.status_code == 201, created.text
    url = created.json()["capture_url"]
    step = client.post(url[url.index("/v1/capture/") :] + "/consent", json={"choice": "decline"})
    assert step.status_code == 200, step.text
    receipt: str = step.json()["decision"]["receipt"]
    return created.json()["id"], receipt


def test_rotation_keeps_old_receipts_verifiable(tmp_path: Path, cli: CliRunner) -> None:
    key_a, key_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    kid_a, kid_b = key_id(key_a.public_key()), key_id(key_b.public_key())
    common: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "public_base_url": "https://faceproof.test",
        "run_migrations_on_start": True,
    }

    # Before: A signs, the JWKS holds A only.
    before = Settings(receipt_key_path=_write_private(tmp_path / "keys" / "a.pem", key_a), **common)
    with _service(before) as client:
        with client.app.state.service.db.session() as db:  # type: ignore[attr-defined]
            tenant = create_tenant(db, "tenant-a", now=T0)
            api_key = create_api_key(db, tenant.id, [Scope.ADMIN], now=T0)[1]
        old_sid, old_receipt = _declined_receipt(client, api_key)
        jwks_before = client.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks_before["keys"]] == [kid_a]
    assert _kid_of(old_receipt) == kid_a

    # Rotate: B signs; A's public half is published from a folder of retired keys.
    retired = tmp_path / "keys" / "retired"
    _write_public(retired / "a.pub.pem", key_a)
    (tmp_path / "keys" / "a.pem").unlink()  # the old private key is no longer needed
    after = Settings(
        receipt_key_path=_write_private(tmp_path / "keys" / "b.pem", key_b),
        receipt_previous_keys=str(retired),
        **common,
    )
    with _service(after) as client:
        jwks = client.get("/.well-known/jwks.json").json()
        new_sid, new_receipt = _declined_receipt(client, api_key)
        auth = {"Authorization": f"Bearer {api_key}"}
        stored = client.get(f"/v1/sessions/{old_sid}", headers=auth)
    assert [k["kid"] for k in jwks["keys"]] == [kid_b, kid_a]  # the signing key first
    assert all("d" not in k and k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in jwks["keys"])
    assert stored.json()["decision"]["receipt"] == old_receipt  # stored receipts are unchanged

    assert verify_receipt(old_receipt, jwks)["sid"] == old_sid
    assert _kid_of(new_receipt) == kid_b
    assert verify_receipt(new_receipt, jwks)["sid"] == new_sid
    with pytest.raises(ReceiptError):  # B really signed it: the old JWKS does not know B
        verify_receipt(new_receipt, jwks_before)

    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks), encoding="utf-8")
    for sid, receipt in ((old_sid, old_receipt), (new_sid, new_receipt)):
        result = cli("receipt", "verify", receipt, "--jwks", jwks_file)
        assert result.code == 0, result.output
        assert result.json()["claims"]["sid"] == sid
    # Without A in the JWKS (a rotation that dropped it), the old receipt no longer verifies.
    jwks_file.write_text(json.dumps({"keys": jwks["keys"][:1]}), encoding="utf-8")
    assert cli("receipt", "verify", old_receipt, "--jwks", jwks_file).code == 1


def test_retired_keys_from_files_and_folders(tmp_path: Path) -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(3)]
    private = _write_private(tmp_path / "k0.pem", keys[0])  # a private PEM: public half kept
    folder = tmp_path / "retired"
    _write_public(folder / "b.pem", keys[2])
    _write_public(folder / "a.pem", keys[1])
    (folder / "notes.txt").write_text("not a key", encoding="utf-8")  # ignored: not *.pem
    loaded = load_verification_keys([private, folder])
    assert [key_id(k) for k in loaded] == [key_id(k.public_key()) for k in keys]  # name order

    signer = ReceiptSigner(keys[0], retired=(*loaded, keys[1].public_key()))
    kids = [k["kid"] for k in signer.jwks()["keys"]]
    assert kids == [signer.kid, key_id(keys[1].public_key()), key_id(keys[2].public_key())]


def test_retired_keys_fail_closed(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_verification_keys([tmp_path / "missing.pem"])
    ec = generate_private_key(SECP256R1()).public_key()
    ec_pem = tmp_path / "ec.pem"
    ec_pem.write_bytes(
        ec.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        load_verification_keys([ec_pem])
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"  # pragma: allowlist secret
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        load_verification_keys([garbage])
    signing = _write_private(tmp_path / "signing.pem", Ed25519PrivateKey.generate())
    with pytest.raises(FileNotFoundError):  # a missing retired key stops the start
        load_or_create_signing_key(signing, create=False, previous=[tmp_path / "gone"])


def test_previous_keys_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().receipt_previous_key_paths == ()
    monkeypatch.setenv("FACEPROOF_RECEIPT_PREVIOUS_KEYS", f" {tmp_path}/a.pem , {tmp_path}/old ,")
    assert Settings().receipt_previous_key_paths == (tmp_path / "a.pem", tmp_path / "old")
