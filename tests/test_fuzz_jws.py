"""Fuzzing the two JWS verifiers: receipts (`privacy/receipts.verify_receipt`) and mobile-ID
SD-JWT presentations (`alternatives/mobile_id.MobileIdVerifier`, `alternatives/jws.py`).

Properties: any token ends in the claims or one typed error (`ReceiptError` /
`MobileIdError`); and a valid token changed in any way is refused, so `success => unchanged`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from faceproof.alternatives import MobileIdError, MobileIdVerifier, TestHolder, TestIssuer
from faceproof.alternatives.jws import decode_unverified, public_jwk, sign_jws
from faceproof.alternatives.mobile_id import KEY_BINDING_TYP, MobileIdIdentity, _digest
from faceproof.privacy.receipts import ReceiptError, ReceiptSigner, verify_receipt
from test_fuzz_support import fuzz_settings, json_values, mutated_token, outcome

SIGNER = ReceiptSigner(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
JWKS = SIGNER.jwks()
CLAIMS = {"sid": "ses_1", "tenant": "ten_1", "decision": "pass", "reasons": ["match_accepted"]}
RECEIPT = SIGNER.sign(CLAIMS)


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


@st.composite
def crafted_receipt(draw: st.DrawFn) -> str:
    """Three base64url parts with arbitrary JSON (or deeply nested JSON, or bytes) in each."""

    def part() -> str:
        kind = draw(st.sampled_from(["json", "deep", "bytes", "header"]))
        if kind == "json":
            return _b64(json.dumps(draw(json_values)).encode())
        if kind == "deep":
            depth = draw(st.integers(500, 40_000))
            return _b64(draw(st.sampled_from([b"[", b'{"a":'])) * depth)
        if kind == "header":
            header = {"alg": draw(json_values), "kid": SIGNER.kid, "typ": "faceproof-receipt+jws"}
            return _b64(json.dumps(header).encode())
        return _b64(draw(st.binary(max_size=96)))

    return ".".join(part() for _ in range(3))


@fuzz_settings(300)
@given(st.one_of(mutated_token(RECEIPT), crafted_receipt(), st.text(max_size=300)))
def test_receipt_verifier_accepts_only_the_signed_token(token: str) -> None:
    result = outcome(lambda: verify_receipt(token, JWKS), ReceiptError)
    if isinstance(result, ReceiptError):
        assert result.code.value == "receipt_invalid"
        assert result.detail == ReceiptError().detail  # opaque: no reason given
    else:
        assert token == RECEIPT
        assert result == CLAIMS


@fuzz_settings(100)
@given(jwks=json_values, token=st.one_of(st.just(RECEIPT), crafted_receipt()))
def test_receipt_verifier_survives_any_jwks(jwks: Any, token: str) -> None:
    result = outcome(lambda: verify_receipt(token, jwks), ReceiptError)
    assert isinstance(result, ReceiptError)  # no JWKS drawn here holds the signing key


def test_deeply_nested_receipt_header_is_a_receipt_error() -> None:
    """Found by the fuzzer: json.loads raised RecursionError (a 500 at the API, a traceback in
    `faceproof receipt verify`) for a header of 40 000 '['."""
    token = f"{_b64(b'[' * 40_000)}.e30.AA"
    with pytest.raises(ReceiptError):
        verify_receipt(token, JWKS)
    with pytest.raises(ValueError, match="nested"):
        decode_unverified(token)


# --- mobile ID ----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
NONCE, AUDIENCE = "session-nonce-4f1c", "https://faceproof.example/v1/sessions/abc"
ISSUER = TestIssuer(key=Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))
HOLDER = TestHolder(key=Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))))
_CREDENTIAL, _DISCLOSURES, _ = ISSUER.issue(
    HOLDER, name="홍길동", birth_date="1990-01-01", number="900101-1234567", now=NOW
)
PRESENTATION = HOLDER.present(_CREDENTIAL, _DISCLOSURES, nonce=NONCE, audience=AUDIENCE, now=NOW)
STATUS = {ISSUER.status_uri: ISSUER.status_list(NOW)}


class _Published:
    def fetch(self, uri: str) -> str:
        if uri not in STATUS:
            raise ValueError("not published")
        return STATUS[uri]


VERIFIER = MobileIdVerifier({ISSUER.issuer_id: ISSUER.public_key}, _Published(), clock=lambda: NOW)


def _verify(presentation: str) -> MobileIdIdentity | MobileIdError:
    return outcome(
        lambda: VERIFIER.verify(presentation, nonce=NONCE, audience=AUDIENCE), MobileIdError
    )


def test_the_unmutated_presentation_verifies() -> None:
    identity = _verify(PRESENTATION)
    assert isinstance(identity, MobileIdIdentity)
    assert identity.number == "900101-1234567"


@st.composite
def mutated_presentation(draw: st.DrawFn) -> str:
    """Edits inside one component, or disclosures dropped, duplicated or reordered."""
    credential, *disclosures, binding = PRESENTATION.split("~")
    parts = [credential, *disclosures, binding]
    how = draw(st.sampled_from(["component", "component", "shuffle", "drop", "duplicate"]))
    if how == "component":
        at = draw(st.integers(0, len(parts) - 1))
        parts[at] = draw(mutated_token(parts[at]))
    elif how == "shuffle":
        middle = draw(st.permutations(disclosures))
        parts = [credential, *middle, binding]
    elif how == "drop":
        del parts[draw(st.integers(0, len(parts) - 1))]
    else:
        at = draw(st.integers(0, len(parts) - 1))
        parts.insert(at, parts[at])
    return "~".join(parts)


@fuzz_settings(300)
@given(st.one_of(mutated_presentation(), mutated_token(PRESENTATION), st.text(max_size=200)))
def test_mobile_id_verifier_accepts_only_the_presented_token(presentation: str) -> None:
    result = _verify(presentation)
    if isinstance(result, MobileIdError):
        assert result.code.value.startswith("mobile_id_")
    else:
        assert presentation == PRESENTATION


binding_values = st.one_of(
    json_values,
    st.sampled_from([NONCE, AUDIENCE, float("nan"), float("inf"), -float("inf"), True]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(int(NOW.timestamp()) - 600, int(NOW.timestamp()) + 600),
)


@fuzz_settings(120)
@given(
    nonce=st.one_of(st.just(NONCE), st.text(max_size=24), binding_values),
    aud=st.one_of(st.just(AUDIENCE), binding_values),
    iat=st.one_of(st.just(int(NOW.timestamp())), binding_values),
    extra=st.dictionaries(st.sampled_from(["sd_hash", "typ", "cnf", "x"]), json_values),
)
def test_a_holder_cannot_craft_a_binding_that_passes_unchecked(
    nonce: Any, aud: Any, iat: Any, extra: dict[str, Any]
) -> None:
    """The key-binding JWT is signed by the holder, i.e. the applicant: every claim in it is
    attacker-controlled. It must verify only with this session's nonce and audience and a
    recent, finite `iat`."""
    presented = "~".join([_CREDENTIAL, *_DISCLOSURES]) + "~"
    claims = {"sd_hash": _digest(presented), **extra, "nonce": nonce, "aud": aud, "iat": iat}
    token = sign_jws(HOLDER.key, {"typ": KEY_BINDING_TYP}, claims)
    result = _verify(presented + token)
    if isinstance(result, MobileIdIdentity):
        assert (nonce, aud) == (NONCE, AUDIENCE)
        assert type(iat) in (int, float)
        assert abs(iat - NOW.timestamp()) <= 600
        assert claims["sd_hash"] == _digest(presented)


@fuzz_settings(80)
@given(claims=st.dictionaries(st.text(max_size=8), json_values), use_issuer_key=st.booleans())
def test_credentials_with_any_claims_are_typed_errors(
    claims: dict[str, Any], use_issuer_key: bool
) -> None:
    """Even an issuer-signed credential with nonsense claims (wrong types everywhere) is a
    MobileIdError, never a crash."""
    key = ISSUER.key if use_issuer_key else HOLDER.key
    body = {"iss": ISSUER.issuer_id, "cnf": {"jwk": public_jwk(HOLDER.key.public_key())}, **claims}
    credential = sign_jws(key, {"typ": "vc+sd-jwt"}, body)
    presentation = HOLDER.present(credential, _DISCLOSURES, nonce=NONCE, audience=AUDIENCE, now=NOW)
    assert isinstance(_verify(presentation), MobileIdError)


def test_nonce_with_non_ascii_characters_is_a_typed_error() -> None:
    """Found by the fuzzer: `secrets.compare_digest` raised TypeError for a holder-chosen nonce
    with non-ASCII characters (a 500 at `POST /v1/capture/{token}/mobile-id`)."""
    presentation = HOLDER.present(
        _CREDENTIAL, _DISCLOSURES, nonce="논스", audience=AUDIENCE, now=NOW
    )
    result = _verify(presentation)
    assert isinstance(result, MobileIdError)
    assert result.code.value == "mobile_id_nonce_mismatch"


@pytest.mark.parametrize("iat", [float("nan"), float("inf")])
def test_binding_time_must_be_finite(iat: float) -> None:
    """Found by the fuzzer: a key-binding `iat` of NaN passed the presentation-age check (every
    comparison with NaN is false), so a presentation never went stale."""
    presented = "~".join([_CREDENTIAL, *_DISCLOSURES]) + "~"
    claims = {"sd_hash": _digest(presented), "nonce": NONCE, "aud": AUDIENCE, "iat": iat}
    token = sign_jws(HOLDER.key, {"typ": KEY_BINDING_TYP}, claims)
    result = _verify(presented + token)
    assert isinstance(result, MobileIdError)


def test_non_ascii_disclosure_is_a_typed_error() -> None:
    """Found by the fuzzer: a disclosure with a non-ASCII character raised UnicodeEncodeError
    while hashing (after the credential had verified: any holder of a genuine credential could
    cause a 500)."""
    credential, *disclosures, binding = PRESENTATION.split("~")
    presentation = "~".join([credential, disclosures[0] + "é", *disclosures[1:], binding])
    assert isinstance(_verify(presentation), MobileIdError)


def test_timedelta_window_matches_the_verifier() -> None:
    # The window the crafted-binding property allows (600 s) covers the verifier's own.
    allowed = VERIFIER.max_presentation_age + VERIFIER.max_skew
    assert allowed <= timedelta(seconds=600)
