"""Per-session upload encryption (privacy/upload_crypto.py) and its use by the capture API."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Card
from faceproof.privacy.upload_crypto import (
    UploadCryptoError,
    decrypt_upload,
    encrypt_upload,
    public_jwk,
    session_upload_key,
)
from test_api import Env, _consent, _make_env, assert_problem
from test_storage import database_url

SECRET = b"s" * 32


def _jwk(token: str = "token-a", secret: bytes = SECRET) -> dict[str, str]:
    return public_jwk(session_upload_key(secret, token))


def test_round_trip_and_binding_to_the_session_and_the_step() -> None:
    jwe = encrypt_upload(b"\xff\xd8\xffjpeg", _jwk(), content_type="image/jpeg", use="document")
    assert b"jpeg" not in jwe
    key = session_upload_key(SECRET, "token-a")
    assert decrypt_upload(jwe, key, use="document") == (b"\xff\xd8\xffjpeg", "image/jpeg")
    with pytest.raises(UploadCryptoError, match="clip step"):
        decrypt_upload(jwe, key, use="clip")
    for other in (
        session_upload_key(SECRET, "token-b"),  # another session
        session_upload_key(b"t" * 32, "token-a"),  # a proxy's guess without the server secret
    ):
        with pytest.raises(UploadCryptoError, match="does not open"):
            decrypt_upload(jwe, other, use="document")


def test_the_key_is_derived_not_stored() -> None:
    assert _jwk("token-a") == _jwk("token-a")
    assert _jwk("token-a") != _jwk("token-b")
    assert _jwk("token-a") != _jwk("token-a", b"t" * 32)


def test_every_tampered_part_is_refused() -> None:
    key = session_upload_key(SECRET, "token-a")
    jwe = encrypt_upload(b"x" * 100, _jwk(), content_type="video/webm", use="clip").decode()
    parts = jwe.split(".")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=="))
    for name, value in (("cty", "image/png"), ("fp_use", "clip "), ("enc", "A128GCM")):
        changed = base64.urlsafe_b64encode(json.dumps({**header, name: value}).encode())
        forged = ".".join([changed.decode().rstrip("="), *parts[1:]])
        with pytest.raises(UploadCryptoError):
            decrypt_upload(forged.encode(), key, use="clip")
    for i in (2, 3, 4):  # iv, ciphertext, tag: flip one character
        flipped = list(parts)
        flipped[i] = ("A" if flipped[i][0] != "A" else "B") + flipped[i][1:]
        with pytest.raises(UploadCryptoError):
            decrypt_upload(".".join(flipped).encode(), key, use="clip")
    off_curve = {**header, "epk": {**header["epk"], "y": header["epk"]["x"]}}
    forged = base64.urlsafe_b64encode(json.dumps(off_curve).encode()).decode().rstrip("=")
    with pytest.raises(UploadCryptoError, match="not a point"):
        decrypt_upload(".".join([forged, *parts[1:]]).encode(), key, use="clip")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_garbage_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(UploadCryptoError):
        decrypt_upload(data, session_upload_key(SECRET, "t"), use="document")


# --- through the API ---------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["optional", "required"])
def uenv(request: pytest.FixtureRequest, tmp_path: Path, comparer: Any) -> Iterator[Env]:
    yield from _make_env(
        tmp_path,
        database_url("sqlite", tmp_path),
        comparer,
        require_encrypted_uploads=request.param,
    )


def _post_jwe(env: Env, path: str, jwe: bytes) -> Any:
    return env.client.post(
        f"{path}/document", files={"image": ("card.jwe", jwe, "application/jose")}
    )


def test_an_encrypted_card_is_read_and_plaintext_only_when_allowed(uenv: Env, card: Card) -> None:
    required = uenv.settings.require_encrypted_uploads
    path = uenv.capture_path(uenv.new_session())
    assert _consent(uenv, path).status_code == 200
    state = uenv.client.get(f"{path}/state").json()
    assert state["uploads_must_be_encrypted"] is required
    key = state["upload_key"]
    assert set(key) >= {"kty", "crv", "x", "y"}
    plain = uenv.upload(f"{path}/document", card.jpeg)
    if required:
        assert_problem(plain, 415, "upload_not_encrypted")
    else:
        assert plain.status_code == 200, plain.text
    elsewhere = encrypt_upload(card.jpeg, _jwk(), content_type="image/jpeg", use="document")
    assert_problem(_post_jwe(uenv, path, elsewhere), 422, "upload_decryption_failed")
    wrong_step = encrypt_upload(card.jpeg, key, content_type="image/jpeg", use="selfie")
    assert_problem(_post_jwe(uenv, path, wrong_step), 422, "upload_decryption_failed")
    sealed = encrypt_upload(card.jpeg, key, content_type="image/jpeg", use="document")
    r = _post_jwe(uenv, path, sealed)
    assert r.status_code == 200, r.text
    assert r.json()["document"]["status"] in {"verified", "unverified"}
