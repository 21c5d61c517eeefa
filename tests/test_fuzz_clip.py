"""Fuzzing the clip decoder (`liveness.clip.decode_clip`: video bytes through PyAV/FFmpeg).

Seeds are small valid clips made here (WebM/VP8, MP4/MPEG-4, QuickTime/MPEG-4); the fuzzer
truncates them, flips bits, overwrites header bytes (EBML sizes, `moov`/`mvhd` fields) and
splices them. Properties: a `Clip` within the limits given, or a `ClipError` with a `clip_*`
code; never another exception, a hang or a memory jump.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import encode_clip
from faceproof.liveness.clip import Clip, ClipError, ClipLimits, decode_clip
from test_fuzz_support import fuzz_settings, mutated, outcome

LIMITS = ClipLimits(
    max_bytes=256 * 1024,
    max_duration_s=3.0,
    max_frames=40,
    max_input_pixels=96 * 96,
    max_side_out=64,
    min_frames=2,
    min_duration_s=0.5,
)


def _encode(fmt: str, codec: str, frames: int = 12, fps: int = 8, size: int = 48) -> bytes:
    rng = np.random.default_rng(frames * 7 + size)
    pixels = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(frames)]
    return encode_clip(Clip.from_arrays(pixels, [i / fps for i in range(frames)]), fmt, codec)


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    return [_encode("webm", "libvpx"), _encode("mp4", "mpeg4"), _encode("mov", "mpeg4")]


def check(data: bytes) -> Clip | ClipError:
    result = outcome(lambda: decode_clip(data, LIMITS), ClipError)
    if isinstance(result, ClipError):
        assert result.code.value.startswith("clip_")
        return result
    assert LIMITS.min_frames <= len(result.frames) <= LIMITS.max_frames
    assert LIMITS.min_duration_s <= result.duration <= LIMITS.max_duration_s
    width, height = result.size
    assert max(width, height) <= LIMITS.max_side_out
    assert all(not frame.flags.writeable for frame in result.frames)
    return result


def test_seeds_decode(seeds: list[bytes]) -> None:
    for seed in seeds:
        clip = check(seed)
        assert isinstance(clip, Clip), seed[:16]
        assert len(clip.frames) == 12


@fuzz_settings(120)
@given(data=st.data())
def test_mutated_clips(seeds: list[bytes], data: st.DataObject) -> None:
    check(data.draw(mutated(seeds, header=256)))


@fuzz_settings(60)
@given(data=st.data(), cut=st.integers(1, 4000))
def test_truncated_clips(seeds: list[bytes], data: st.DataObject, cut: int) -> None:
    seed = data.draw(st.sampled_from(seeds))
    check(seed[: max(len(seed) - cut, 1)])


@fuzz_settings(40)
@given(data=st.data(), keep=st.integers(16, 2000))
def test_spliced_clips(seeds: list[bytes], data: st.DataObject, keep: int) -> None:
    """One container's head on another's body (e.g. a WebM header on MP4 data)."""
    head, body = data.draw(st.permutations(seeds))[:2]
    check(head[:keep] + body[keep:])


def test_limits_refuse_big_and_long_clips() -> None:
    big = _encode("mp4", "mpeg4", frames=4, size=128)  # 128x128 > 96x96 input pixels
    assert outcome(lambda: decode_clip(big, LIMITS), ClipError).code.value == "clip_corrupt"  # type: ignore[union-attr]
    long = _encode("mp4", "mpeg4", frames=48, fps=8)  # 6 s > 3 s
    assert outcome(lambda: decode_clip(long, LIMITS), ClipError).code.value == "clip_too_long"  # type: ignore[union-attr]
