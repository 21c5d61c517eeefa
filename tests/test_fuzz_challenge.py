"""Fuzzing the liveness challenge-spec parser (`liveness/challenge.ChallengeIssuer.verify`).

The spec comes back from the capture client, so any string may arrive. Properties: every spec
ends in a `Challenge` or a `ChallengeError` (`challenge_unknown` / `challenge_expired`); only the
issued spec (whitespace around it aside) verifies; and even a correctly signed payload with
nonsense inside (only the key holder could make one) is a typed error, never a crash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faceproof.liveness.challenge import Challenge, ChallengeError, ChallengeIssuer
from test_fuzz_support import fuzz_settings, json_values, mutated_token, outcome

KEY = b"fuzzing-challenge-key-0123456789"
T0 = 1_780_000_000.0
SESSION = "ses_fuzz"


def _issuer(now: float = T0) -> ChallengeIssuer:
    return ChallengeIssuer(key=KEY, clock=lambda: now, rng=random.Random(4))


CHALLENGE, SPEC = _issuer().issue(SESSION)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed(payload: bytes) -> str:
    body = _b64(payload)
    mac = hmac.new(KEY, f"v1.{body}".encode(), hashlib.sha256).digest()
    return f"v1.{body}.{_b64(mac)}"


@fuzz_settings(300)
@given(st.one_of(mutated_token(SPEC), st.text(max_size=200), st.just(SPEC)))
def test_only_the_issued_spec_verifies(spec: str) -> None:
    result = outcome(lambda: _issuer().verify(spec, session=SESSION), ChallengeError)
    if isinstance(result, ChallengeError):
        assert result.code.value == "challenge_unknown"
    else:
        assert spec.strip() == SPEC
        assert result == CHALLENGE


@st.composite
def signed_payloads(draw: st.DrawFn) -> bytes:
    """Payloads signed with the right key: valid fields with one replaced, any JSON, deep
    nesting, huge numbers, lone surrogates."""
    kind = draw(st.sampled_from(["field", "field", "json", "deep", "raw"]))
    if kind == "field":
        payload = CHALLENGE.payload()
        name = draw(st.sampled_from(sorted(payload)))
        payload[name] = draw(
            st.one_of(
                json_values,
                st.just(10**400),
                st.just("\ud800"),
                st.lists(st.lists(st.floats(), max_size=3), max_size=5),
            )
        )
        return json.dumps(payload).encode("utf-8", "surrogatepass")
    if kind == "json":
        return json.dumps(draw(json_values)).encode("utf-8", "surrogatepass")
    if kind == "deep":
        return b"[" * draw(st.integers(500, 20_000))
    return draw(st.binary(max_size=200))


@fuzz_settings(300)
@given(signed_payloads())
def test_signed_nonsense_is_a_typed_error(payload: bytes) -> None:
    spec = _signed(payload)
    result = outcome(lambda: _issuer().verify(spec, session=SESSION), ChallengeError)
    if isinstance(result, Challenge):
        assert result.session == SESSION
        assert result.expires_at > T0
        assert 1 <= len(result.actions) <= 4


@fuzz_settings(100)
@given(st.floats(T0 - 10, T0 + 400, allow_nan=False))
def test_expiry_follows_the_clock(now: float) -> None:
    result = outcome(lambda: _issuer(now).verify(SPEC, session=SESSION), ChallengeError)
    if now >= CHALLENGE.expires_at:
        assert isinstance(result, ChallengeError)
        assert result.code.value == "challenge_expired"
    else:
        assert result == CHALLENGE


@pytest.mark.parametrize(
    "spec",
    [
        "v1.\ud800.AAAA",  # a lone surrogate in the payload part
        SPEC[:-1] + "\ud800",
        _signed(
            b'{"nonce":"n","session":"ses_fuzz","actions":["blink"],"windows":[[0,1]],'
            b'"issued_at":1,"expires_at":' + b"9" * 400 + b"}"
        ),
        _signed(b"[" * 20_000),
    ],
)
def test_found_by_fuzzing_are_challenge_unknown(spec: str) -> None:
    """Found by the fuzzer: UnicodeEncodeError (lone surrogate), OverflowError (an integer too
    large for a float) and RecursionError (deep JSON) escaped `verify`."""
    with pytest.raises(ChallengeError) as info:
        _issuer().verify(spec, session=SESSION)
    assert info.value.code.value == "challenge_unknown"
