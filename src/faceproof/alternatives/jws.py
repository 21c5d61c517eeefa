"""Minimal EdDSA (Ed25519) compact JWS and JWK helpers for the mobile-ID path.

Only `alg: EdDSA` is accepted: no `none`, no HMAC, no algorithm taken from the token to choose
a key type. Verification failures raise ValueError; callers translate them into one reason code.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceproof.privacy.receipts import b64url_decode, b64url_encode

__all__ = ["public_jwk", "public_key_from_jwk", "sign_jws", "verify_jws"]

_MAX_TOKEN = 64 * 1024


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def public_key_from_jwk(jwk: Any) -> Ed25519PublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 JWK")
    if "d" in jwk:
        raise ValueError("a private key where a public key belongs")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise ValueError("JWK without x")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(x))


def sign_jws(key: Ed25519PrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    head = b64url_encode(_json({**header, "alg": "EdDSA"}))
    body = b64url_encode(_json(claims))
    signature = key.sign(f"{head}.{body}".encode("ascii"))
    return f"{head}.{body}.{b64url_encode(signature)}"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, for choosing the key; never trust them before `verify_jws`."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        raise ValueError("bad token")
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except RecursionError as exc:  # deeply nested JSON (found by tests/test_fuzz_jws.py)
        raise ValueError("JSON nested too deeply") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header and claims must be objects")
    return header, claims


def verify_jws(token: str, key: Ed25519PublicKey, typ: str) -> dict[str, Any]:
    header, claims = decode_unverified(token)
    if header.get("alg") != "EdDSA" or header.get("typ") != typ:
        raise ValueError("unexpected alg or typ")
    head, body, signature = token.split(".")
    try:
        key.verify(b64url_decode(signature), f"{head}.{body}".encode("ascii"))
    except InvalidSignature as exc:
        raise ValueError("bad signature") from exc
    return claims
