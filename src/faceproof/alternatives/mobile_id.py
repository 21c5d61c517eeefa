"""The government mobile ID as a non-biometric path: verify an SD-JWT VC presentation.

Korea's mobile ID is DID / Verifiable Credential based. faceproof verifies a presentation in the
SD-JWT VC form (IETF SD-JWT VC, an EdDSA JWT-VC with selective disclosure):

    <issuer-signed credential JWT>~<disclosure>~...~<key-binding JWT>

Checks, each with its own reason code:
1. the credential's issuer is on the configured trust list, and its Ed25519 signature verifies
   (`mobile_id_untrusted_issuer`, `mobile_id_invalid`);
2. not expired, issued-at not in the future beyond the allowed clock skew (`mobile_id_expired`,
   `mobile_id_clock_skew`);
3. revocation: the bit at the credential's `status.idx` in the issuer-signed status list is clear
   (`mobile_id_revoked`);
4. holder binding: the key-binding JWT is signed by the key in the credential's `cnf.jwk`, and
   covers exactly this credential and these disclosures (`sd_hash`) (`mobile_id_holder_binding`);
5. the key-binding JWT's `nonce` and `aud` are this session's (`mobile_id_nonce_mismatch`);
6. the disclosed claims (name, birth date, number) hash to digests in the credential's `_sd`
   (`mobile_id_invalid`) and are all present (`mobile_id_missing_claims`).
No face data is involved anywhere on this path.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceproof.alternatives.jws import (
    decode_unverified,
    public_jwk,
    public_key_from_jwk,
    sign_jws,
    verify_jws,
)
from faceproof.errors import InputError
from faceproof.privacy.receipts import b64url_decode, b64url_encode
from faceproof.reasons import ReasonCode

__all__ = [
    "HttpStatusLists",
    "MobileIdError",
    "MobileIdIdentity",
    "MobileIdVerifier",
    "StatusListSource",
    "TestHolder",
    "TestIssuer",
    "load_mobile_id_verifier",
]

CREDENTIAL_TYP = "vc+sd-jwt"
KEY_BINDING_TYP = "kb+jwt"
STATUS_LIST_TYP = "statuslist+jwt"
CREDENTIAL_TYPE = "https://faceproof.example/credentials/kr-mobile-id"
REQUIRED_CLAIMS = ("name", "birth_date", "number")


class MobileIdError(InputError):
    http_status = 422


@dataclass(frozen=True, slots=True)
class MobileIdIdentity:
    """What the presentation proved. Kept only as a pseudonym and masked number downstream."""

    issuer: str
    name: str
    birth_date: str
    number: str
    credential_id: str


class StatusListSource(Protocol):
    def fetch(self, uri: str) -> str:
        """The issuer-signed status list JWT published at `uri`."""
        ...


def _digest(disclosure: str) -> str:
    return b64url_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


def _utf8(value: object) -> bytes:
    return str(value).encode("utf-8", "surrogatepass")


def _fail(code: ReasonCode, detail: str) -> MobileIdError:
    return MobileIdError(code, detail)


@dataclass
class MobileIdVerifier:
    trust_list: Mapping[str, Ed25519PublicKey]  # issuer id -> public key
    status_lists: StatusListSource
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    max_skew: timedelta = timedelta(seconds=120)
    max_presentation_age: timedelta = timedelta(minutes=5)

    def verify(self, presentation: str, *, nonce: str, audience: str) -> MobileIdIdentity:
        # An SD-JWT is base64url and `~`: ASCII only (non-ASCII broke the digests: fuzzing).
        if (
            not isinstance(presentation, str)
            or len(presentation) > 128 * 1024
            or not presentation.isascii()
        ):
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "not a presentation")
        parts = presentation.split("~")
        if len(parts) < 2:
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "not an SD-JWT presentation")
        credential, disclosures, key_binding = parts[0], parts[1:-1], parts[-1]
        claims = self._credential(credential)
        self._status(claims)
        self._key_binding(claims, credential, disclosures, key_binding, nonce, audience)
        disclosed = self._disclosures(claims, disclosures)
        missing = [c for c in REQUIRED_CLAIMS if not isinstance(disclosed.get(c), str)]
        if missing:
            raise _fail(ReasonCode.MOBILE_ID_MISSING_CLAIMS, f"not disclosed: {missing}")
        return MobileIdIdentity(
            issuer=claims["iss"],
            name=disclosed["name"],
            birth_date=disclosed["birth_date"],
            number=disclosed["number"],
            credential_id=str(claims.get("jti", "")),
        )

    def _credential(self, token: str) -> dict[str, Any]:
        try:
            _, unverified = decode_unverified(token)
        except (ValueError, UnicodeError) as exc:
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "malformed credential") from exc
        issuer = unverified.get("iss")
        key = self.trust_list.get(issuer) if isinstance(issuer, str) else None
        if key is None:
            raise _fail(ReasonCode.MOBILE_ID_UNTRUSTED_ISSUER, "issuer not on the trust list")
        try:
            claims = verify_jws(token, key, CREDENTIAL_TYP)
        except (ValueError, UnicodeError) as exc:
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "credential signature") from exc
        if claims.get("vct") != CREDENTIAL_TYPE:
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "not a mobile-ID credential")
        now = self.clock().timestamp()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "credential without exp/iat")
        if exp <= now:
            raise _fail(ReasonCode.MOBILE_ID_EXPIRED, "credential expired")
        if iat > now + self.max_skew.total_seconds():
            raise _fail(ReasonCode.MOBILE_ID_CLOCK_SKEW, "credential issued in the future")
        return claims

    def _status(self, claims: dict[str, Any]) -> None:
        status = claims.get("status")
        if not isinstance(status, dict):
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "credential without a status entry")
        index, uri = status.get("idx"), status.get("uri")
        if not isinstance(index, int) or index < 0 or not isinstance(uri, str):
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "bad status entry")
        try:
            token = self.status_lists.fetch(uri)
            listing = verify_jws(token, self.trust_list[claims["iss"]], STATUS_LIST_TYP)
            if listing.get("iss") != claims["iss"] or listing.get("uri") != uri:
                raise ValueError("status list for another issuer or list")
            bits = zlib.decompress(b64url_decode(listing["bits"]))
        except (ValueError, KeyError, TypeError, zlib.error, UnicodeError) as exc:
            # A list we cannot read is not proof of validity: fail closed.
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "revocation status unavailable") from exc
        byte, bit = divmod(index, 8)
        if byte >= len(bits):
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "status index outside the list")
        if bits[byte] >> bit & 1:
            raise _fail(ReasonCode.MOBILE_ID_REVOKED, "credential revoked")

    def _key_binding(
        self,
        claims: dict[str, Any],
        credential: str,
        disclosures: list[str],
        token: str,
        nonce: str,
        audience: str,
    ) -> None:
        try:
            holder = public_key_from_jwk((claims.get("cnf") or {}).get("jwk"))
            binding = verify_jws(token, holder, KEY_BINDING_TYP)
        except (ValueError, UnicodeError, AttributeError) as exc:
            raise _fail(ReasonCode.MOBILE_ID_HOLDER_BINDING, "key binding") from exc
        presented = "~".join([credential, *disclosures]) + "~"
        if binding.get("sd_hash") != _digest(presented):
            raise _fail(ReasonCode.MOBILE_ID_HOLDER_BINDING, "binding covers other disclosures")
        # The holder chooses every claim here: compare bytes (compare_digest refuses non-ASCII
        # str), and refuse a NaN/infinite `iat`, which no age check could catch.
        if (
            not secrets.compare_digest(_utf8(binding.get("nonce", "")), _utf8(nonce))
            or binding.get("aud") != audience
        ):
            raise _fail(ReasonCode.MOBILE_ID_NONCE_MISMATCH, "nonce or audience")
        iat = binding.get("iat")
        now = self.clock().timestamp()
        if not isinstance(iat, int | float) or isinstance(iat, bool) or not math.isfinite(iat):
            raise _fail(ReasonCode.MOBILE_ID_HOLDER_BINDING, "binding without iat")
        if (
            iat > now + self.max_skew.total_seconds()
            or iat < now - (self.max_presentation_age + self.max_skew).total_seconds()
        ):
            raise _fail(ReasonCode.MOBILE_ID_CLOCK_SKEW, "presentation time")

    def _disclosures(self, claims: dict[str, Any], disclosures: list[str]) -> dict[str, Any]:
        digests = claims.get("_sd")
        if not isinstance(digests, list) or claims.get("_sd_alg", "sha-256") != "sha-256":
            raise _fail(ReasonCode.MOBILE_ID_INVALID, "credential without digests")
        disclosed: dict[str, Any] = {}
        for disclosure in disclosures:
            if _digest(disclosure) not in digests:
                raise _fail(ReasonCode.MOBILE_ID_INVALID, "a disclosure the issuer did not sign")
            try:
                salt, name, value = json.loads(b64url_decode(disclosure))
            except (ValueError, TypeError, UnicodeError) as exc:
                raise _fail(ReasonCode.MOBILE_ID_INVALID, "malformed disclosure") from exc
            if not isinstance(salt, str) or not isinstance(name, str) or name in disclosed:
                raise _fail(ReasonCode.MOBILE_ID_INVALID, "malformed disclosure")
            disclosed[name] = value
        return disclosed


class HttpStatusLists:
    """Fetch issuer status lists over HTTP(S) with a bounded timeout; errors fail closed."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self._timeout = timeout_s

    def fetch(self, uri: str) -> str:
        import httpx

        try:
            response = httpx.get(uri, timeout=self._timeout, follow_redirects=False)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ValueError("status list unavailable") from exc
        return response.text.strip()


def load_mobile_id_verifier(
    trust_path: str, clock: Callable[[], datetime] | None = None
) -> MobileIdVerifier:
    """A verifier from a JSON trust list file `{issuer id: Ed25519 public JWK}`."""
    from pathlib import Path

    from faceproof.errors import ServiceError

    try:
        raw = json.loads(Path(trust_path).read_text(encoding="utf-8"))
        trust = {str(issuer): public_key_from_jwk(jwk) for issuer, jwk in raw.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise ServiceError(ReasonCode.MOBILE_ID_NOT_CONFIGURED, "unreadable trust list") from exc
    if clock is None:
        return MobileIdVerifier(trust, HttpStatusLists())
    return MobileIdVerifier(trust, HttpStatusLists(), clock=clock)


# --- a local test issuer and holder, so the path is tested end to end -------------------------


@dataclass
class TestIssuer:
    """Issues mobile-ID credentials and publishes their status list. For tests and demos only."""

    __test__ = False  # not a pytest test class

    issuer_id: str = "did:example:kr-mobile-id-test-issuer"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    status_uri: str = "https://issuer.example/status/1"
    size: int = 1024
    revoked: set[int] = field(default_factory=set)
    next_index: int = 0

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def issue(
        self,
        holder: TestHolder,
        *,
        name: str,
        birth_date: str,
        number: str,
        now: datetime,
        valid_for: timedelta = timedelta(days=365),
    ) -> tuple[str, list[str], int]:
        """(credential JWT, disclosures, status index)."""
        disclosures = [
            b64url_encode(json.dumps([secrets.token_urlsafe(16), k, v]).encode())
            for k, v in (("name", name), ("birth_date", birth_date), ("number", number))
        ]
        index, self.next_index = self.next_index, self.next_index + 1
        claims = {
            "iss": self.issuer_id,
            "iat": int(now.timestamp()),
            "exp": int((now + valid_for).timestamp()),
            "jti": secrets.token_hex(8),
            "vct": CREDENTIAL_TYPE,
            "cnf": {"jwk": public_jwk(holder.key.public_key())},
            "status": {"idx": index, "uri": self.status_uri},
            "_sd": sorted(_digest(d) for d in disclosures),
            "_sd_alg": "sha-256",
        }
        return sign_jws(self.key, {"typ": CREDENTIAL_TYP}, claims), disclosures, index

    def status_list(self, now: datetime) -> str:
        bits = bytearray(self.size // 8)
        for index in self.revoked:
            bits[index // 8] |= 1 << (index % 8)
        claims = {
            "iss": self.issuer_id,
            "uri": self.status_uri,
            "iat": int(now.timestamp()),
            "bits": b64url_encode(zlib.compress(bytes(bits))),
        }
        return sign_jws(self.key, {"typ": STATUS_LIST_TYP}, claims)


@dataclass
class TestHolder:
    """A wallet: holds the key the credential is bound to and makes presentations."""

    __test__ = False

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def present(
        self,
        credential: str,
        disclosures: list[str],
        *,
        nonce: str,
        audience: str,
        now: datetime,
    ) -> str:
        presented = "~".join([credential, *disclosures]) + "~"
        binding = sign_jws(
            self.key,
            {"typ": KEY_BINDING_TYP},
            {
                "nonce": nonce,
                "aud": audience,
                "iat": int(now.timestamp()),
                "sd_hash": _digest(presented),
            },
        )
        return presented + binding
