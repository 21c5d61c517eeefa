"""Signed receipts: compact JWS (RFC 7515) with Ed25519 (`alg: EdDSA`, RFC 8037), and JWKS.

A receipt proves what faceproof decided for one session: session id, tenant, decision, reason
codes, assurance details (model versions, threshold and its FMR target, liveness checks run), a
pseudonymous subject id and timestamps. It holds no image, template or personal data.

Verification is strict and opaque: the header must be exactly `{"alg": "EdDSA", "kid", "typ"}`
with a `kid` found in the JWKS as an OKP/Ed25519 key; anything else (`none`, HS256, unknown key,
bad base64url, bad signature, bad JSON) raises one `ReceiptError` (`receipt_invalid`). Why it
failed is not told to the caller.

Key rotation: one key signs; retired keys are still published. `ReceiptSigner.retired` holds
the public halves of earlier signing keys, and `jwks()` lists them after the signing key, so a
receipt signed before a rotation still verifies against the published JWKS (its `kid` names the
key that signed it). `load_verification_keys` reads them from PEM files (public or private; only
the public half is kept) or from folders of `*.pem`, as `FACEPROOF_RECEIPT_PREVIOUS_KEYS` names
them (docs/deployment.md, "Key rotation").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceproof.errors import InputError
from faceproof.reasons import ReasonCode

__all__ = [
    "ReceiptError",
    "ReceiptSigner",
    "b64url_decode",
    "b64url_encode",
    "key_id",
    "load_or_create_signing_key",
    "load_signing_key",
    "load_verification_keys",
    "public_jwk",
    "verify_receipt",
]

RECEIPT_TYP = "faceproof-receipt+jws"


class ReceiptError(InputError):
    """The receipt is not valid. Deliberately says no more."""

    http_status = 400

    def __init__(self) -> None:
        super().__init__(ReasonCode.RECEIPT_INVALID)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); raises ValueError otherwise."""
    if not isinstance(value, str) or "=" in value or len(value) % 4 == 1:
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64url_encode(raw) != value:  # non-canonical encodings (stray bits, other alphabets)
        raise ValueError("not base64url")
    return raw


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """RFC 7638-style thumbprint of the OKP JWK (first 16 bytes, base64url)."""
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(_raw_public(key))}
    digest = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode())
    return b64url_encode(digest.digest()[:16])


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The OKP/Ed25519 JWK of a verification key (public only), with its `kid`."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(_raw_public(key)),
        "kid": key_id(key),
        "alg": "EdDSA",
        "use": "sig",
    }


@dataclass(frozen=True)
class ReceiptSigner:
    """Signs with `private_key`; publishes it and the `retired` verification keys."""

    private_key: Ed25519PrivateKey
    retired: tuple[Ed25519PublicKey, ...] = ()

    @property
    def kid(self) -> str:
        return key_id(self.private_key.public_key())

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key())

    def jwks(self) -> dict[str, Any]:
        """The signing key first, then each retired key once (a retired copy of the signing
        key is not listed twice)."""
        keys = [self.jwk()]
        seen = {self.kid}
        for public in self.retired:
            jwk = public_jwk(public)
            if jwk["kid"] not in seen:
                seen.add(jwk["kid"])
                keys.append(jwk)
        return {"keys": keys}

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "EdDSA", "kid": self.kid, "typ": RECEIPT_TYP}
        signing_input = (
            b64url_encode(_compact(header)) + "." + b64url_encode(_compact(claims))
        ).encode("ascii")
        signature = self.private_key.sign(signing_input)
        return signing_input.decode("ascii") + "." + b64url_encode(signature)


def _compact(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _public_keys(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        return keys
    for jwk in entries:
        if not isinstance(jwk, dict):
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if jwk.get("alg", "EdDSA") != "EdDSA" or "d" in jwk:
            continue
        kid, x = jwk.get("kid"), jwk.get("x")
        if not isinstance(kid, str) or not isinstance(x, str):
            continue
        try:
            raw = b64url_decode(x)
            keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            continue
    return keys


def verify_receipt(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The receipt's claims if its signature verifies under a key of `jwks`; else ReceiptError."""
    try:
        if not isinstance(token, str) or len(token) > 65536:
            raise ValueError("bad token")
        parts = token.split(".")
        if len(parts) != 3:
            raise ValueError("not compact JWS")
        header = json.loads(b64url_decode(parts[0]))
        if not isinstance(header, dict) or set(header) - {"alg", "kid", "typ"}:
            raise ValueError("bad header")
        if header.get("alg") != "EdDSA" or header.get("typ") != RECEIPT_TYP:
            raise ValueError("bad alg")
        key = _public_keys(jwks).get(header.get("kid"))  # type: ignore[arg-type]
        if key is None:
            raise ValueError("unknown key")
        key.verify(b64url_decode(parts[2]), (parts[0] + "." + parts[1]).encode("ascii"))
        claims = json.loads(b64url_decode(parts[1]))
        if not isinstance(claims, dict):
            raise ValueError("bad claims")
    # RecursionError: json.loads on a deeply nested header (found by tests/test_fuzz_jws.py).
    except (ValueError, TypeError, UnicodeError, RecursionError, InvalidSignature) as exc:
        raise ReceiptError() from exc
    return claims


def load_signing_key(path: Path) -> ReceiptSigner:
    """A PEM (PKCS#8) Ed25519 private key; ValueError if it is not one."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return ReceiptSigner(key)


def _verification_key(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes()
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if isinstance(private, Ed25519PrivateKey):
                return private.public_key()
        else:
            public = serialization.load_pem_public_key(data)
            if isinstance(public, Ed25519PublicKey):
                return public
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{path} is not an Ed25519 key") from exc
    raise ValueError(f"{path} is not an Ed25519 key")


def load_verification_keys(paths: Iterable[Path]) -> tuple[Ed25519PublicKey, ...]:
    """Retired receipt keys: each path a PEM file (public, or PKCS#8 private of which only the
    public half is kept) or a folder whose `*.pem` files are read in name order. A missing
    path raises FileNotFoundError, a PEM that is not an Ed25519 key ValueError: a retired key
    that silently drops out of the JWKS would break its old receipts."""
    keys: list[Ed25519PublicKey] = []
    for path in paths:
        if path.is_dir():
            keys.extend(_verification_key(p) for p in sorted(path.glob("*.pem")) if p.is_file())
        elif path.exists():
            keys.append(_verification_key(path))
        else:
            raise FileNotFoundError(f"retired receipt key not found: {path}")
    return tuple(keys)


def load_or_create_signing_key(
    path: Path, *, create: bool, previous: Iterable[Path] = ()
) -> ReceiptSigner:
    """Load the key at `path`; when it is missing and `create` (development), generate it 0600.
    `previous`: the retired keys to keep publishing (`load_verification_keys`)."""
    retired = load_verification_keys(previous)
    if path.exists():
        return ReceiptSigner(load_signing_key(path).private_key, retired)
    if not create:
        raise FileNotFoundError(f"receipt signing key not found: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return ReceiptSigner(key, retired)
