"""Per-session upload encryption: the capture client encrypts each photo and clip to its
session's own P-256 public key, so that no proxy or carrier system between the page and the
engine can read them (TLS may end earlier than the engine).

The format is a standard compact JWE (RFC 7516) with `alg: ECDH-ES` (direct key agreement,
RFC 7518 §4.6: Concat KDF over the ECDH secret) and `enc: A256GCM`, plus two protected header
members of ours: `cty` (the plaintext's media type) and `fp_use` (`document`, `selfie`,
`clip` or `frames`), so a ciphertext made for one step is refused at another.

The session's private key is never stored: every request re-derives it with HKDF-SHA256 from a
server secret (only the engine has it) and the SHA-256 of the capture token (the request carries
the token). A proxy that sees the token still lacks the secret; a worker that has the secret
still needs the token, which the database holds only as a hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceproof.errors import InputError
from faceproof.reasons import ReasonCode

__all__ = [
    "JWE_MEDIA_TYPE",
    "UploadCryptoError",
    "decrypt_upload",
    "encrypt_upload",
    "public_jwk",
    "session_upload_key",
]

JWE_MEDIA_TYPE = "application/jose"
_CURVE_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
_ENC = "A256GCM"


class UploadCryptoError(InputError):
    """The upload is not a JWE this session's key opens (422 `upload_decryption_failed`)."""

    def __init__(self, detail: str) -> None:
        super().__init__(ReasonCode.UPLOAD_DECRYPTION_FAILED, detail)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii() or any(c in text for c in "=+/ \n"):
        raise UploadCryptoError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise UploadCryptoError("not base64url") from exc


def session_upload_key(secret: bytes, token: str) -> ec.EllipticCurvePrivateKey:
    """The session's P-256 key, derived (never stored) from the server secret and the token."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=48,  # 384 bits reduced mod n: a negligible bias
        salt=hashlib.sha256(token.encode()).digest(),
        info=b"faceproof/upload-key/v1",
    ).derive(secret)
    scalar = int.from_bytes(okm, "big") % (_CURVE_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> dict[str, str]:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
        "use": "enc",
        "alg": "ECDH-ES",
    }


def _jwk_public(jwk: Any) -> ec.EllipticCurvePublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise UploadCryptoError("epk must be a P-256 EC key")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise UploadCryptoError("epk must be a P-256 EC key")
    xb, yb = _unb64(x), _unb64(y)
    if len(xb) != 32 or len(yb) != 32:
        raise UploadCryptoError("epk must be a P-256 EC key")
    try:  # rejects points not on the curve (invalid-curve attacks)
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(xb, "big"), int.from_bytes(yb, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise UploadCryptoError("epk is not a point on P-256") from exc


def _content_key(shared: bytes) -> bytes:
    """RFC 7518 §4.6.2: Concat KDF, AlgorithmID = enc, empty apu/apv, 256 bits."""
    enc = _ENC.encode()
    other = len(enc).to_bytes(4, "big") + enc + bytes(4) + bytes(4) + (256).to_bytes(4, "big")
    return ConcatKDFHash(algorithm=hashes.SHA256(), length=32, otherinfo=other).derive(shared)


def decrypt_upload(jwe: bytes, key: ec.EllipticCurvePrivateKey, *, use: str) -> tuple[bytes, str]:
    """The plaintext and its media type (`cty`), or an UploadCryptoError (never another)."""
    try:
        text = jwe.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise UploadCryptoError("not a compact JWE") from exc
    parts = text.split(".")
    if len(parts) != 5:
        raise UploadCryptoError("not a compact JWE")
    header_b64, encrypted_key, iv_b64, ciphertext_b64, tag_b64 = parts
    try:
        header = json.loads(_unb64(header_b64))
    except ValueError as exc:
        raise UploadCryptoError("the JWE header is not JSON") from exc
    if not isinstance(header, dict):
        raise UploadCryptoError("the JWE header is not an object")
    if header.get("alg") != "ECDH-ES" or header.get("enc") != _ENC or encrypted_key:
        raise UploadCryptoError("only alg ECDH-ES with enc A256GCM is accepted")
    if header.get("fp_use") != use:
        raise UploadCryptoError(f"this ciphertext was not made for the {use} step")
    cty = header.get("cty")
    if not isinstance(cty, str) or not cty or len(cty) > 100:
        raise UploadCryptoError("the JWE header lacks the media type (cty)")
    iv, ciphertext, tag = _unb64(iv_b64), _unb64(ciphertext_b64), _unb64(tag_b64)
    if len(iv) != 12 or len(tag) != 16:
        raise UploadCryptoError("bad IV or tag length")
    shared = key.exchange(ec.ECDH(), _jwk_public(header.get("epk")))
    try:
        plaintext = AESGCM(_content_key(shared)).decrypt(
            iv, ciphertext + tag, header_b64.encode("ascii")
        )
    except InvalidTag as exc:
        raise UploadCryptoError("the ciphertext does not open with this session's key") from exc
    return plaintext, cty.lower()


def encrypt_upload(plaintext: bytes, jwk: dict[str, str], *, content_type: str, use: str) -> bytes:
    """What a capture client does (tests, SDKs in Python): the upload as a compact JWE."""
    import os

    recipient = _jwk_public(jwk)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    header = {
        "alg": "ECDH-ES",
        "enc": _ENC,
        "epk": {k: v for k, v in public_jwk(ephemeral).items() if k in {"kty", "crv", "x", "y"}},
        "cty": content_type,
        "fp_use": use,
    }
    header_b64 = _b64(json.dumps(header, separators=(",", ":")).encode())
    iv = os.urandom(12)
    sealed = AESGCM(_content_key(ephemeral.exchange(ec.ECDH(), recipient))).encrypt(
        iv, plaintext, header_b64.encode("ascii")
    )
    compact = ".".join([header_b64, "", _b64(iv), _b64(sealed[:-16]), _b64(sealed[-16:])])
    return compact.encode("ascii")
