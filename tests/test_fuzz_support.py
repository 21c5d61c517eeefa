"""Shared pieces of the fuzz tests (`tests/test_fuzz_*.py`): settings, mutations, guards.

Every fuzz test states one property: whatever the input, the code under test returns a result or
raises its module's documented, typed faceproof error (a `FaceproofError` subclass with a reason
code); never another exception, a hang or unbounded memory.

CI runs short, deterministic runs (`derandomize=True`, a fixed number of examples per test, no
example database). Longer, randomised runs:

    FACEPROOF_FUZZ_EXAMPLES=5000 uv run pytest tests/test_fuzz_*.py -p no:cacheprovider
    FACEPROOF_FUZZ_EXAMPLES=20000 uv run pytest tests/test_fuzz_jws.py --hypothesis-seed=7

With `FACEPROOF_FUZZ_EXAMPLES` set, each fuzz test runs that many examples, randomised, and
failing examples are saved in `.hypothesis/` (git-ignored locally), so the next run replays them
first. `--hypothesis-show-statistics` prints per-test timing.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from faceproof.errors import FaceproofError

__all__ = [
    "B64URL",
    "LONG_RUN",
    "MAX_SECONDS_PER_INPUT",
    "TOKEN_CHARS",
    "bounded",
    "fuzz_settings",
    "json_values",
    "mutated",
    "mutated_token",
    "outcome",
]

_ENV = "FACEPROOF_FUZZ_EXAMPLES"
_LONG = os.environ.get(_ENV, "").strip()
LONG_RUN = int(_LONG) if _LONG.isdigit() and int(_LONG) > 0 else 0

#: One input may take at most this long (a hang guard; generous for a busy 2-core machine).
MAX_SECONDS_PER_INPUT = 20.0
#: The resident-set peak may grow at most this much over one fuzz test (an unbounded-memory guard).
MAX_RSS_GROWTH_BYTES = 768 * 1024 * 1024

_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
]


def fuzz_settings(ci_examples: int) -> settings:
    """`ci_examples` deterministic examples in CI; `FACEPROOF_FUZZ_EXAMPLES` random ones if set."""
    if LONG_RUN:
        return settings(
            max_examples=LONG_RUN,
            deadline=None,
            suppress_health_check=_HEALTH,
            database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
        )
    return settings(
        max_examples=ci_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_HEALTH,
        print_blob=True,
    )


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@contextmanager
def bounded() -> Iterator[None]:
    """Fail when the block takes longer than MAX_SECONDS_PER_INPUT or the RSS peak jumps."""
    rss = _peak_rss_bytes()
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < MAX_SECONDS_PER_INPUT, f"one input took {elapsed:.1f} s"
    grown = _peak_rss_bytes() - rss
    assert grown < MAX_RSS_GROWTH_BYTES, f"one input raised the memory peak by {grown} bytes"


T = TypeVar("T")
E = TypeVar("E", bound=FaceproofError)


def outcome(call: Callable[[], T], error: type[E]) -> T | E:
    """`call()`'s result, or the typed `error` it raised; anything else propagates (and fails)."""
    with bounded():
        try:
            return call()
        except error as exc:
            caught = exc
    assert caught.code.value, "a typed error always carries a reason code"
    assert "Traceback" not in str(caught)
    return caught


_MUTATIONS = ("flip", "set", "truncate", "insert", "delete", "duplicate", "zero_run", "ff_run")


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], header: int = 64) -> bytes:
    """One of `seeds` after 1-6 mutations: bit flips, byte sets, truncation, inserted, deleted or
    duplicated slices, runs of 0x00/0xFF. Half of the positions fall in the first `header`
    bytes, where containers keep their sizes and dimensions."""
    data = bytearray(draw(st.sampled_from(list(seeds))))

    def position(extra: int = 0) -> int:
        limit = max(len(data) - 1 + extra, 0)
        if draw(st.booleans()):
            return draw(st.integers(0, min(header, limit)))
        return draw(st.integers(0, limit))

    for op in draw(st.lists(st.sampled_from(_MUTATIONS), min_size=1, max_size=6)):
        if not data:
            break
        if op == "flip":
            data[position()] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[position()] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif op == "insert":
            data[position(1) : position(1)] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            at = position()
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "duplicate":
            at = position()
            chunk = data[at : at + draw(st.integers(1, 256))]
            data[at:at] = chunk
        else:
            at = position()
            fill = 0 if op == "zero_run" else 0xFF
            data[at : at + draw(st.integers(1, 16))] = bytes([fill]) * draw(st.integers(1, 16))
    return bytes(data)


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Characters a mutation may put into a token: its own alphabet, separators, padding, base64
#: (not url) letters, whitespace, NUL, non-ASCII and a lone surrogate.
TOKEN_CHARS = st.one_of(
    st.sampled_from(B64URL),
    st.sampled_from([".", "~", "=", "+", "/", " ", "\n", "\x00", "é", "한", "\ud800", "\u2028"]),
)

#: Any JSON-like value, with the strings JWS headers care about mixed in.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["EdDSA", "none", "HS256", "faceproof-receipt+jws", "vc+sd-jwt", "kb+jwt"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@st.composite
def mutated_token(draw: st.DrawFn, token: str) -> str:
    """A text token after 1-4 edits: substitutions, insertions, deletions, truncation."""
    text = list(token)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["sub", "ins", "del", "cut"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if op == "sub" and text:
            text[at] = draw(TOKEN_CHARS)
        elif op == "ins":
            text.insert(at, draw(TOKEN_CHARS))
        elif op == "del" and text:
            del text[at : at + draw(st.integers(1, 8))]
        else:
            del text[at:]
    return "".join(text)


# --- the helpers' own checks ------------------------------------------------------------------


def test_mutations_change_the_seed_and_stay_small() -> None:
    seed = bytes(range(256)) * 4
    seen: list[bytes] = []

    @fuzz_settings(50)
    @given(mutated([seed]))
    def collect(data: bytes) -> None:
        assert len(data) <= len(seed) + 6 * 256
        seen.append(data)

    collect()
    assert sum(data != seed for data in seen) >= len(seen) * 0.9


def test_outcome_lets_untyped_errors_through() -> None:
    def fail() -> Any:
        raise KeyError("not a faceproof error")

    with pytest.raises(KeyError):
        outcome(fail, FaceproofError)
