"""Liveness without face models: clip intake, challenges, action following, parallax maths, CLI.

Videos are encoded in memory with PyAV from plain patterns (no faces); folders of frames hold
plain patterns too. Nothing showing a face is written to disk.
"""

from __future__ import annotations

import argparse
import io
import json
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from faceproof.errors import FaceError
from faceproof.liveness.challenge import (
    ACTIONS,
    HEAD_MOVES,
    Challenge,
    ChallengeError,
    ChallengeIssuer,
    FrameMeasures,
    follow_actions,
)
from faceproof.liveness.clip import Clip, ClipError, ClipLimits, decode_clip, load_clip
from faceproof.liveness.parallax import measure_parallax
from faceproof.liveness.result import CheckResult, LivenessResult
from faceproof.reasons import ReasonCode

KEY = bytes(range(32))


def pattern(i: int, w: int = 96, h: int = 64) -> np.ndarray:
    """A moving gradient: changes every frame, holds no face."""
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    img = (x * 0.5 + y * 0.3 + i * 7 + np.array([0, 40, 80])) % 256
    return img.astype(np.uint8)


def encode_video(
    n: int, fps: int = 15, fmt: str = "mp4", codec: str = "mpeg4", w: int = 96, h: int = 64
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(i, w, h), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


# --- clip intake -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "mpeg4"), ("webm", "libvpx"), ("mov", "mpeg4")])
def test_video_is_decoded_by_content_with_timestamps(fmt: str, codec: str) -> None:
    clip = decode_clip(encode_video(30, fps=15, fmt=fmt, codec=codec))
    assert len(clip.frames) == 30
    assert clip.size == (96, 64)
    assert clip.timestamps[0] == 0.0
    assert np.allclose(np.diff(clip.timestamps), 1 / 15, atol=2e-3)
    assert all(not f.flags.writeable for f in clip.frames)
    assert clip.source.startswith("video:")


def test_large_video_frames_are_shrunk_to_640() -> None:
    clip = decode_clip(encode_video(16, fps=15, w=1280, h=720))
    assert clip.size == (640, 360)


def test_path_and_bytes_give_the_same_clip(tmp_path: Path) -> None:
    data = encode_video(20)
    path = tmp_path / "clip.bin"  # the name says nothing: content decides
    path.write_bytes(data)
    a, b = load_clip(path), load_clip(data)
    assert a.timestamps == b.timestamps
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ReasonCode.CLIP_CORRUPT),
        (b"not a video at all" * 50, ReasonCode.CLIP_CORRUPT),
        (bytes(random.Random(1).randbytes(5000)), ReasonCode.CLIP_CORRUPT),
    ],
)
def test_garbage_is_clip_corrupt(data: bytes, code: ReasonCode) -> None:
    with pytest.raises(ClipError) as info:
        decode_clip(data)
    assert info.value.code is code


def test_zero_frame_video_is_too_short_or_corrupt() -> None:
    data = encode_video(0)
    with pytest.raises(ClipError) as info:
        decode_clip(data)
    assert info.value.code in (ReasonCode.CLIP_TOO_SHORT, ReasonCode.CLIP_CORRUPT)


def test_truncated_video_is_refused() -> None:
    data = encode_video(30)
    with pytest.raises(ClipError) as info:
        decode_clip(data[: len(data) // 3])
    assert info.value.code in (ReasonCode.CLIP_CORRUPT, ReasonCode.CLIP_TOO_SHORT)


def test_one_frame_and_sub_second_clips_are_too_short() -> None:
    for n in (1, 10):  # 10 frames at 15 fps = 0.6 s
        with pytest.raises(ClipError) as info:
            decode_clip(encode_video(n))
        assert info.value.code is ReasonCode.CLIP_TOO_SHORT


def test_long_video_is_refused_before_decoding_it_all() -> None:
    data = encode_video(40, fps=2)  # 20 s
    with pytest.raises(ClipError) as info:
        decode_clip(data)
    assert info.value.code is ReasonCode.CLIP_TOO_LONG


def test_frame_limit_is_enforced() -> None:
    with pytest.raises(ClipError) as info:
        decode_clip(encode_video(40), ClipLimits(max_frames=30))
    assert info.value.code is ReasonCode.CLIP_TOO_LONG


def write_frames(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        Image.fromarray(pattern(i)).save(folder / f"f{i:03d}.png")


def test_folder_of_frames_with_assumed_fps(tmp_path: Path) -> None:
    write_frames(tmp_path / "c", 20)
    clip = load_clip(tmp_path / "c")
    assert len(clip.frames) == 20
    assert clip.source == "frames"
    assert clip.timestamps[1] == pytest.approx(1 / 15)


def test_folder_timestamps_json_and_csv(tmp_path: Path) -> None:
    write_frames(tmp_path / "j", 12)
    (tmp_path / "j" / "timestamps.json").write_text(json.dumps([100 + i * 0.1 for i in range(12)]))
    clip = load_clip(tmp_path / "j")
    assert clip.timestamps[0] == 0.0
    assert clip.timestamps[-1] == pytest.approx(1.1)
    write_frames(tmp_path / "c", 12)
    rows = "file,seconds\n" + "".join(f"f{i:03d}.png,{i * 0.2}\n" for i in range(12))
    (tmp_path / "c" / "timestamps.csv").write_text(rows)
    assert load_clip(tmp_path / "c").duration == pytest.approx(2.2)


def test_folder_with_bad_timestamps_or_frames(tmp_path: Path) -> None:
    write_frames(tmp_path / "a", 12)
    (tmp_path / "a" / "timestamps.json").write_text("[0, 1]")
    with pytest.raises(ClipError) as info:
        load_clip(tmp_path / "a")
    assert info.value.code is ReasonCode.CLIP_CORRUPT
    write_frames(tmp_path / "b", 12)
    (tmp_path / "b" / "f005.png").write_bytes(b"broken")
    with pytest.raises(ClipError) as info:
        load_clip(tmp_path / "b")
    assert info.value.code is ReasonCode.CLIP_CORRUPT
    write_frames(tmp_path / "one", 1)
    with pytest.raises(ClipError) as info:
        load_clip(tmp_path / "one")
    assert info.value.code is ReasonCode.CLIP_TOO_SHORT


def test_missing_path_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(ClipError) as info:
        load_clip(tmp_path / "absent.mp4")
    assert info.value.code is ReasonCode.CLIP_CORRUPT


def test_clip_validates_its_frames() -> None:
    frame = pattern(0)
    with pytest.raises(ValueError, match="read-only"):
        Clip((frame,), (0.0,))
    with pytest.raises(ValueError, match="timestamps"):
        Clip.from_arrays([frame], [0.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        Clip.from_arrays([frame, pattern(1, 48, 32)], [0.0, 1.0])
    clip = Clip.from_arrays([frame, frame], [0.0, 1.0])
    assert "frames=2" in repr(clip)


# --- challenges ----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issuer(clock: FakeClock | None = None, seed: int = 7) -> ChallengeIssuer:
    return ChallengeIssuer(KEY, clock=clock or FakeClock(), rng=random.Random(seed))


def test_challenges_are_random_but_deterministic_with_injected_randomness() -> None:
    a, spec_a = issuer(seed=1).issue("session-1")
    b, spec_b = issuer(seed=1).issue("session-1")
    c, _ = issuer(seed=2).issue("session-1")
    assert spec_a == spec_b
    assert a == b
    assert (a.actions, a.nonce) != (c.actions, c.nonce)
    lengths = {len(issuer(seed=s).issue("x")[0].actions) for s in range(40)}
    assert lengths == {2, 3, 4}
    for s in range(40):
        ch, _ = issuer(seed=s).issue("x")
        assert all(x in ACTIONS for x in ch.actions)
        assert all(p != q for p, q in zip(ch.actions, ch.actions[1:], strict=False))
        assert all(w1[1] <= w2[0] for w1, w2 in zip(ch.windows, ch.windows[1:], strict=False))


def test_every_challenge_moves_the_head() -> None:
    """Parallax needs head motion: blinks and mouth openings alone are never asked, while
    they still come in most challenges beside a movement."""
    drawn = [issuer(seed=s).issue("x")[0].actions for s in range(300)]
    assert all(set(actions) & set(HEAD_MOVES) for actions in drawn)
    assert sum("blink" in a for a in drawn) > 60
    assert sum("open_mouth" in a for a in drawn) > 60
    pairs = [issuer(seed=s).issue("x", n_actions=2)[0].actions for s in range(300)]
    assert ("blink", "open_mouth") not in pairs
    assert ("open_mouth", "blink") not in pairs
    assert len(set(pairs)) == 20 - 2  # every other ordered pair of two different actions


def test_spec_round_trip_and_binding() -> None:
    clock = FakeClock()
    iss = issuer(clock)
    challenge, spec = iss.issue("session-1", n_actions=3)
    assert iss.verify(spec) == challenge
    assert iss.verify(spec, session="session-1") == challenge
    with pytest.raises(ChallengeError) as info:
        iss.verify(spec, session="session-2")
    assert info.value.code is ReasonCode.CHALLENGE_UNKNOWN


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),  # signature
        lambda s: s.split(".")[0] + "." + s.split(".")[1][:-3] + "abc." + s.split(".")[2],
        lambda s: "v2" + s[2:],
        lambda s: "garbage",
        lambda s: "",
    ],
)
def test_tampered_or_foreign_spec_is_unknown(mutate: Any) -> None:
    _, spec = issuer().issue("s")
    with pytest.raises(ChallengeError) as info:
        issuer().verify(mutate(spec))
    assert info.value.code is ReasonCode.CHALLENGE_UNKNOWN


def test_spec_signed_with_another_key_is_unknown() -> None:
    _, spec = ChallengeIssuer(b"k" * 32, clock=FakeClock(), rng=random.Random(1)).issue("s")
    with pytest.raises(ChallengeError) as info:
        issuer().verify(spec)
    assert info.value.code is ReasonCode.CHALLENGE_UNKNOWN


def test_challenge_expires_by_the_injected_clock() -> None:
    clock = FakeClock()
    iss = issuer(clock)
    _, spec = iss.issue("s")
    clock.now += iss.ttl_s - 1
    iss.verify(spec)
    clock.now += 1
    with pytest.raises(ChallengeError) as info:
        iss.verify(spec)
    assert info.value.code is ReasonCode.CHALLENGE_EXPIRED


def test_consumed_challenge_cannot_be_used_again() -> None:
    iss = issuer()
    _, spec = iss.issue("s")
    iss.verify(spec, consume=True)
    with pytest.raises(ChallengeError) as info:
        iss.verify(spec, consume=True)
    assert info.value.code is ReasonCode.CHALLENGE_UNKNOWN


def test_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ChallengeIssuer(b"short")


def track(events: dict[str, tuple[float, float]], fps: float = 15, seconds: float = 7.0) -> list:
    """Per-frame measures: neutral, plus each action as a plateau over (start, end) seconds."""
    out = []
    for i in range(round(fps * seconds)):
        t = i / fps
        yaw, pitch, eye, mouth = 2.0, -8.0, 0.28, 0.05

        def on(name: str, t: float = t) -> bool:
            return name in events and events[name][0] <= t <= events[name][1]

        yaw += 20 if on("turn_left") else (-20 if on("turn_right") else 0)
        pitch += 15 if on("look_up") else 0
        eye = 0.08 if on("blink") else eye
        mouth = 0.45 if on("open_mouth") else mouth
        out.append(FrameMeasures(t, yaw, pitch, eye, mouth))
    return out


def challenge_of(actions: tuple[str, ...]) -> Challenge:
    windows = tuple((0.6 + 2 * i, 2.6 + 2 * i) for i in range(len(actions)))
    return Challenge("n", "s", actions, windows, 0.0, 100.0)


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_is_detected_in_its_window(action: str) -> None:
    ok, checks = follow_actions(track({action: (1.2, 1.8)}), challenge_of((action,)))
    assert ok
    assert checks[0].done
    assert 1.2 <= (checks[0].at or 0) <= 1.8
    # Outside its window (or not at all) it does not count.
    ok, _ = follow_actions(track({action: (3.2, 3.8)}), challenge_of((action,)))
    assert not ok
    assert not follow_actions(track({}), challenge_of((action,)))[0]


def test_actions_must_come_in_order() -> None:
    ch = challenge_of(("turn_left", "look_up", "blink"))
    assert follow_actions(
        track({"turn_left": (1.0, 1.6), "look_up": (3.0, 3.5), "blink": (5.0, 5.3)}), ch
    )[0]
    swapped = track({"look_up": (1.0, 1.6), "turn_left": (3.0, 3.5), "blink": (5.0, 5.3)})
    ok, checks = follow_actions(swapped, ch)
    assert not ok
    assert [c.done for c in checks] == [False, False, True]
    # Turning the wrong way is not turning left.
    assert not follow_actions(track({"turn_right": (1.0, 1.6)}), challenge_of(("turn_left",)))[0]


# --- parallax maths on point sets (no model) -------------------------------------------------


def face_points(rng: np.random.Generator) -> np.ndarray:
    """468 points with depth, shaped roughly like a face: an ellipsoid cap plus a nose ridge."""
    u = rng.uniform(-1, 1, 468)
    v = rng.uniform(-1.3, 1.3, 468)
    z = -60 * np.sqrt(np.clip(1 - u**2 / 1.2 - v**2 / 2.0, 0, 1))
    z -= 40 * np.exp(-(u**2) * 20) * (np.abs(v) < 0.5)
    pts = np.column_stack([u * 80, v * 80, z])
    pts[33] = (-45, -30, -40)
    pts[263] = (45, -30, -40)
    return pts


def project(pts: np.ndarray, yaw: float, pitch: float = 0, shift=(320, 240), f: float = 600):
    y, p = np.radians(yaw), np.radians(pitch)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    cam = pts @ (ry @ rx).T + [0, 0, 600]
    return np.column_stack(
        [shift[0] + f * cam[:, 0] / cam[:, 2], shift[1] + f * cam[:, 1] / cam[:, 2]]
    )


def test_rotating_3d_points_show_parallax_and_a_tilted_plane_does_not() -> None:
    rng = np.random.default_rng(0)
    head = face_points(rng)
    flat = head * [1, 1, 0]
    yaws = 25 * np.sin(np.linspace(0, 2 * np.pi, 30))
    head_tracks = np.stack([project(head, a) for a in yaws])
    flat_tracks = np.stack([project(flat, a) for a in yaws])
    live = measure_parallax(head_tracks, 0)
    planar = measure_parallax(flat_tracks, 0)
    assert live.depth_seen
    assert not live.planar
    assert live.score > 0.9
    assert planar.planar
    assert not planar.depth_seen
    assert planar.residual < 1e-3
    assert planar.score < 0.25


def test_still_face_is_insufficient_motion_not_live() -> None:
    rng = np.random.default_rng(1)
    head = face_points(rng)
    tracks = np.stack([project(head, 0) + rng.normal(0, 0.3, (468, 2)) for _ in range(30)])
    result = measure_parallax(tracks, 0)
    assert result.insufficient
    assert not result.depth_seen
    assert not result.planar


# --- result type -----------------------------------------------------------------------------


def test_result_refuses_live_with_a_rejecting_reason() -> None:
    check = CheckResult("timing", 1.0, True)
    with pytest.raises(ValueError, match="rejecting"):
        LivenessResult(True, 0.9, (ReasonCode.PLANAR_MOTION,), (check,), 0, 2, 1.0, 2.0, 2, 1.0)
    with pytest.raises(ValueError, match="needs a code"):
        CheckResult("timing", 0.0, False)


# --- CLI (parser built here; cli/main.py wiring is the coordinator's) --------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from faceproof.cli.liveness import add_parsers

    parser = argparse.ArgumentParser(prog="faceproof")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = int(args.handler(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_corrupt_clip_prints_the_json_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.webm"
    bad.write_bytes(b"\x1a\x45\xdf\xa3 definitely not webm")
    code, out, _ = run_cli(["liveness", str(bad), "--json"], capsys)
    doc = json.loads(out)
    assert code == 3
    assert doc["live"] is False
    assert doc["score"] == 0.0
    assert doc["reasons"] == ["clip_corrupt"]


def test_cli_unknown_and_expired_challenges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "c.mp4"
    data.write_bytes(encode_video(20))
    monkeypatch.delenv("FACEPROOF_CHALLENGE_KEY", raising=False)
    code, out, _ = run_cli(["liveness", str(data), "--json", "--challenge", "v1.x.y"], capsys)
    assert code == 3
    assert json.loads(out)["reasons"] == ["challenge_unknown"]
    monkeypatch.setenv("FACEPROOF_CHALLENGE_KEY", KEY.hex())
    code, out, _ = run_cli(["liveness", str(data), "--json", "--challenge", "v1.x.y"], capsys)
    assert code == 3
    assert json.loads(out)["reasons"] == ["challenge_unknown"]
    old = ChallengeIssuer(KEY, clock=FakeClock(1_000_000_000.0), rng=random.Random(3))
    _, spec = old.issue("s")
    code, out, _ = run_cli(["liveness", str(data), "--json", "--challenge", spec], capsys)
    assert code == 3
    assert json.loads(out)["reasons"] == ["challenge_expired"]


def test_cli_new_challenge_verifies(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEPROOF_CHALLENGE_KEY", KEY.hex())
    code, out, _ = run_cli(["liveness", "--new-challenge", "sess-9"], capsys)
    assert code == 0
    challenge = ChallengeIssuer(KEY).verify(out.strip(), session="sess-9")
    assert 2 <= len(challenge.actions) <= 4
    monkeypatch.delenv("FACEPROOF_CHALLENGE_KEY")
    code, _, err = run_cli(["liveness", "--new-challenge", "s"], capsys)
    assert code == 2
    assert "FACEPROOF_CHALLENGE_KEY" in err


def test_cli_needs_a_clip(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["liveness", "--json"], capsys)
    assert code == 2
    assert "CLIP" in err


def test_cli_faceless_clip_is_face_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "c.mp4"
    data.write_bytes(encode_video(20, w=320, h=240))
    code, out, _ = run_cli(["liveness", str(data), "--json"], capsys)
    assert code == 3
    assert json.loads(out)["reasons"] == ["face_not_found"]
    assert FaceError  # the engine raises FaceError; the CLI prints it as the contract
