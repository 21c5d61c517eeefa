"""The liveness step as still frames with timestamps: `POST /v1/capture/{token}/frames`.

The frames are the example head-turn clip (conftest `head_turn_mp4`, the clip the video tests
upload) decoded and re-encoded one by one as JPEG, with their presentation times in
milliseconds: what a phone SDK that grabs camera frames would send. The challenge issuer is
seeded (conftest CHALLENGE_SEED) so that it asks for the actions the generated head performs.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from conftest import CHALLENGE_SEED, SECRET_MARKER, Card, Images, encode
from faceproof.comparison import FaceComparer
from faceproof.liveness import LivenessEngine
from faceproof.liveness.clip import (
    ClipError,
    ClipLimits,
    decode_frames,
    load_clip,
    parse_timestamps_ms,
)
from faceproof.privacy.receipts import verify_receipt
from faceproof.privacy.upload_crypto import encrypt_upload
from faceproof.reasons import ReasonCode, describe
from faceproof.storage.models import Attempt, Decision
from test_api import Env, _consent, _make_env, assert_problem
from test_storage import database_url

MAX_CLIP_BYTES = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def head_turn_frames(head_turn_mp4: bytes) -> tuple[list[bytes], list[float]]:
    """The head-turn clip's frames as JPEG (q90) and its timestamps in milliseconds."""
    clip = load_clip(head_turn_mp4)
    frames = [encode(Image.fromarray(np.asarray(f)), "JPEG", quality=90) for f in clip.frames]
    return frames, [round(t * 1000.0, 3) for t in clip.timestamps]


def _env(tmp_path: Path, comparer: Any, engine: Any, **overrides: Any) -> Iterator[Env]:
    yield from _make_env(
        tmp_path,
        database_url("sqlite", tmp_path),
        comparer,
        liveness=engine,
        max_clip_bytes=MAX_CLIP_BYTES,
        **overrides,
    )


@pytest.fixture
def fenv(tmp_path: Path, comparer: FaceComparer, liveness_engine: LivenessEngine) -> Iterator[Env]:
    yield from _env(tmp_path, comparer, liveness_engine)


def _service(env: Env) -> Any:
    return env.client.app.state.service  # type: ignore[attr-defined]


def _ready(env: Env, card: Card) -> tuple[dict[str, Any], str, str]:
    """A session with consent, the card and a challenge for CHALLENGE_ACTIONS."""
    session = env.new_session()
    path = env.capture_path(session)
    assert _consent(env, path).status_code == 200
    assert env.upload(f"{path}/document", card.jpeg).status_code == 200
    _service(env).challenges.rng = random.Random(CHALLENGE_SEED)  # the same first draw each time
    r = env.client.post(f"{path}/challenge")
    assert r.status_code == 200, r.text
    return session, path, r.json()["challenge"]


def _post_frames(
    env: Env,
    path: str,
    spec: str | None,
    frames: Sequence[bytes],
    timestamps: Any,
    content_type: str | Sequence[str] = "image/jpeg",
    field: str = "frame",
) -> Any:
    types = [content_type] * len(frames) if isinstance(content_type, str) else content_type
    files = [
        (field, (f"{i:04d}.jpg", data, kind))
        for i, (data, kind) in enumerate(zip(frames, types, strict=True))
    ]
    data: dict[str, str] = {}
    if spec is not None:
        data["challenge"] = spec
    if timestamps is not None:
        data["timestamps"] = timestamps if isinstance(timestamps, str) else json.dumps(timestamps)
    return env.client.post(f"{path}/frames", files=files, data=data)


def _attempts_used(env: Env, session: dict[str, Any]) -> int:
    polled = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader"))
    used: int = polled.json()["attempts_used"]
    return used


def _files_under(root: Path, pattern: str = "**/*") -> dict[Path, float]:
    out = {}
    for path in root.glob(pattern):
        try:
            if path.is_file():
                out[path] = path.stat().st_mtime
        except OSError:
            continue
    return out


# --- the whole flow -----------------------------------------------------------------------------


def test_frames_give_the_decision_the_video_gives_and_leave_nothing_behind(
    fenv: Env,
    card: Card,
    head_turn_mp4: bytes,
    head_turn_frames: tuple[list[bytes], list[float]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    frames, stamps = head_turn_frames
    assert len(frames) == len(stamps) >= 60
    assert stamps[0] == 0.0
    assert stamps[-1] > 4000.0
    assert sum(map(len, frames)) < MAX_CLIP_BYTES
    tmp_before = _files_under(Path(tempfile.gettempdir()), "*")  # shared: its top level only

    # The video path, for reference.
    _, path, spec = _ready(fenv, card)
    video = fenv.client.post(
        f"{path}/clip",
        files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
        data={"challenge": spec},
    )
    assert video.status_code == 200, video.text
    # The same performance as frames.
    session, path, spec = _ready(fenv, card)
    r = _post_frames(fenv, path, spec, frames, stamps)
    assert r.status_code == 200, r.text
    step, reference = r.json(), video.json()
    assert reference["outcome"] == "pass"
    assert step["outcome"] == reference["outcome"]
    assert step["state"] == "completed"
    assert step["reasons"] == reference["reasons"]
    assert {"liveness_passed", "match_accepted"} <= set(step["reasons"])

    claims = verify_receipt(
        step["decision"]["receipt"], fenv.client.get("/.well-known/jwks.json").json()
    )
    assurance = claims["assurance"]
    checks = {c["name"]: c for c in assurance["liveness_checks"]}
    assert {"timing", "light", "continuity", "parallax", "challenge"} <= set(checks)
    assert all(c["passed"] for c in checks.values())
    assert assurance["attempts_used"] == 1
    assert _attempts_used(fenv, session) == 1
    assert len(_service(fenv).templates) == 0
    # The challenge was used up: the same frames again are refused, spending nothing.
    assert_problem(_post_frames(fenv, path, spec, frames, stamps), 409, "token_replayed")

    # No retention: no frame bytes in the data dir (database included), the temp dir or logs.
    samples = [f[200:264] for f in frames[:: max(1, len(frames) // 8)]]
    data_files = _files_under(fenv.settings.data_dir)
    data_files |= {p: 0.0 for p in fenv.settings.data_dir.parent.glob("faceproof.db*")}
    assert data_files  # the database at least
    tmp_after = _files_under(Path(tempfile.gettempdir()), "*")
    changed = [p for p, m in tmp_after.items() if tmp_before.get(p) != m]
    for file in [*data_files, *changed]:
        try:
            raw = file.read_bytes()
        except OSError:
            continue
        if file in data_files:  # other engineers' temp files may hold any JPEG: ours only here
            assert b"\xff\xd8\xff" not in raw, f"JPEG magic in {file}"
        for sample in samples:
            assert sample not in raw, f"frame bytes in {file}"
    with _service(fenv).db.session() as db:
        assert [a.outcome for a in db.scalars(select(Attempt))] == ["pass", "pass"]
        assert len(db.scalars(select(Decision)).all()) == 2
    assert "\xff\xd8\xff" not in caplog.text
    assert "\ufffd\ufffd\ufffd" not in caplog.text


# --- bad input: refused before an attempt ------------------------------------------------------


def test_bad_frames_are_problems_that_cost_no_attempt_nor_the_challenge(
    fenv: Env,
    card: Card,
    images: Images,
    head_turn_frames: tuple[list[bytes], list[float]],
) -> None:
    frames, stamps = head_turn_frames
    session, path, spec = _ready(fenv, card)

    def refused(status: int, code: str, frames_: Sequence[bytes], stamps_: Any, **kw: Any) -> None:
        response = _post_frames(fenv, path, spec, frames_, stamps_, **kw)
        body = assert_problem(response, status, code)
        assert body["instance"] == "/v1/capture/{token}/frames"
        # Never an image's bytes (or text decoded from them) in a problem.
        assert "\ufffd" not in response.text
        assert "JFIF" not in response.text
        assert SECRET_MARKER.decode() not in response.text

    swapped = [*stamps[:10], stamps[11], stamps[10], *stamps[12:]]
    refused(422, "frames_out_of_order", frames, swapped)
    refused(422, "frames_out_of_order", frames, [*stamps[:5], stamps[4], *stamps[6:]])  # repeat
    refused(422, "frames_out_of_order", frames, stamps[::-1])
    refused(422, "frames_malformed", frames, stamps[:-1])  # one timestamp short
    refused(422, "frames_malformed", frames[:-1], stamps)
    for text in ('{"0": 0}', "0, 66", "[0, 66, ", '["0"]', "[true]", "[[0]]", "null"):
        refused(422, "frames_malformed", frames[:3], text)
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        refused(422, "frames_malformed", frames[:3], f"[0, {bad}, 200]")
    refused(422, "clip_too_long", frames[:3], [0, 100, 15_001])  # 15 s at most
    refused(422, "clip_too_long", [b"x"] * 601, list(range(601)))  # 600 frames at most
    refused(422, "clip_too_short", frames[:1], [0])
    refused(422, "clip_too_short", frames[:5], [0, 100, 200, 300, 400])  # 1 s at least
    # A frame that is not a usable image: its image code, with the frame's index.
    truncated = frames[3][: len(frames[3]) // 2]
    refused(422, "image_truncated", [*frames[:3], truncated, *frames[4:]], stamps)
    four = [0, 400, 800, 1200]
    refused(422, "image_unsupported_format", [*frames[:3], images.random_bytes], four)
    refused(422, "image_empty", [*frames[:3], b""], four)
    refused(422, "image_decompression_bomb", [*frames[:3], images.bomb_png], four)
    # Mixed sizes.
    body = assert_problem(
        _post_frames(fenv, path, spec, [*frames[:20], images.jpeg, *frames[21:]], stamps),
        422,
        "frames_malformed",
    )
    assert body["context"]["frame"] == 20
    # The type of each part; the total size; the form itself.
    refused(415, "unsupported_media_type", frames, stamps, content_type="image/gif")
    refused(415, "unsupported_media_type", frames, stamps, content_type="video/mp4")
    refused(415, "unsupported_media_type", frames, stamps, content_type="image/heic")
    padding = [b"\xff\xd8\xff" + bytes(512 * 1024)] * 7  # 3.5 MiB > MAX_CLIP_BYTES
    refused(413, "payload_too_large", padding, list(range(7)))
    refused(422, "malformed_request", frames, None)  # no timestamps
    assert_problem(_post_frames(fenv, path, None, frames, stamps), 422, "malformed_request")
    text_only = {"challenge": (None, spec), "timestamps": (None, "[0, 1000]")}
    assert_problem(fenv.client.post(f"{path}/frames", files=text_only), 422, "malformed_request")
    refused(422, "malformed_request", frames, stamps, field="frames")  # a misnamed part
    assert_problem(
        fenv.client.post(f"{path}/frames", data={"challenge": spec, "timestamps": "[0]"}),
        415,
        "unsupported_media_type",
    )

    # None of it used an attempt, or the challenge: the good frames with the same spec go on.
    assert _attempts_used(fenv, session) == 0
    with _service(fenv).db.session() as db:
        assert db.scalars(select(Attempt)).all() == []
    r = _post_frames(fenv, path, spec, frames, stamps)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "pass"


def test_challenge_and_state_are_checked_before_the_frames(
    fenv: Env, card: Card, head_turn_frames: tuple[list[bytes], list[float]]
) -> None:
    frames, stamps = head_turn_frames
    session = fenv.new_session()
    path = fenv.capture_path(session)
    assert_problem(_post_frames(fenv, path, "v1.x", frames, stamps), 409, "consent_required")
    _, path, spec = _ready(fenv, card)
    _, _other_path, other_spec = _ready(fenv, card)
    # Another session's challenge, a tampered one, an expired one: refused, even with bad frames.
    assert_problem(_post_frames(fenv, path, other_spec, frames, stamps), 409, "challenge_unknown")
    assert_problem(
        _post_frames(fenv, path, spec[:-2] + "AA", frames, [0]), 409, "challenge_unknown"
    )
    fenv.clock.advance(121)  # a challenge lives 120 s
    assert_problem(_post_frames(fenv, path, spec, frames, stamps[::-1]), 410, "challenge_expired")
    assert_problem(
        _post_frames(fenv, "/v1/capture/nope", spec, frames, stamps), 404, "token_invalid"
    )


def test_one_photo_held_still_is_an_attempt_that_is_not_live(
    fenv: Env, card: Card, head_turn_frames: tuple[list[bytes], list[float]]
) -> None:
    """Well-formed frames of a still picture pass intake and are judged by liveness (an attempt,
    `retry`), never matched."""
    frames, stamps = head_turn_frames
    session, path, spec = _ready(fenv, card)
    r = _post_frames(fenv, path, spec, [frames[0]] * len(frames), stamps)
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["outcome"] == "retry"
    assert step["attempts_used"] == 1
    assert "liveness_passed" not in step["reasons"]
    assert "match_accepted" not in step["reasons"]
    assert {"challenge_not_followed", "motion_insufficient"} & set(step["reasons"])
    assert_problem(_post_frames(fenv, path, spec, frames, stamps), 409, "challenge_unknown")
    # The used challenge is what is wrong, whatever else is: frames out of order, or too few.
    assert_problem(_post_frames(fenv, path, spec, frames, stamps[::-1]), 409, "challenge_unknown")
    assert_problem(_post_frames(fenv, path, spec, frames[:1], [0]), 409, "challenge_unknown")
    assert _attempts_used(fenv, session) == 1


def test_a_body_cut_off_inside_a_frame_leaves_no_open_buffer(
    fenv: Env, head_turn_frames: tuple[list[bytes], list[float]]
) -> None:
    frames, _ = head_turn_frames
    path = fenv.capture_path(fenv.new_session())
    body = (
        b'--cut\r\nContent-Disposition: form-data; name="frame"; filename="0.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + frames[0] + b"\r\n"
        b'--cut\r\nContent-Disposition: form-data; name="frame"; filename="1.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + frames[1][:500]
    )
    response = fenv.client.post(
        f"{path}/frames",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=cut"},
    )
    assert_problem(response, 422, "malformed_request")
    gc.collect()  # an unclosed buffer would raise a ResourceWarning here (filterwarnings=error)


# --- encryption -------------------------------------------------------------------------------


def test_encrypted_frames_are_opened_and_plaintext_refused_when_required(
    tmp_path: Path,
    comparer: FaceComparer,
    liveness_engine: LivenessEngine,
    card: Card,
    head_turn_frames: tuple[list[bytes], list[float]],
) -> None:
    frames, stamps = head_turn_frames
    for env in _env(tmp_path, comparer, liveness_engine, require_encrypted_uploads=True):
        session = env.new_session()
        path = env.capture_path(session)
        assert _consent(env, path).status_code == 200
        key = env.client.get(f"{path}/state").json()["upload_key"]
        sealed_card = encrypt_upload(card.jpeg, key, content_type="image/jpeg", use="document")
        r = env.client.post(
            f"{path}/document", files={"image": ("card", sealed_card, "application/jose")}
        )
        assert r.status_code == 200, r.text
        _service(env).challenges.rng = random.Random(CHALLENGE_SEED)
        spec = env.client.post(f"{path}/challenge").json()["challenge"]

        assert_problem(_post_frames(env, path, spec, frames, stamps), 415, "upload_not_encrypted")
        for_clip = [encrypt_upload(f, key, content_type="image/jpeg", use="clip") for f in frames]
        assert_problem(
            _post_frames(env, path, spec, for_clip, stamps, content_type="application/jose"),
            422,
            "upload_decryption_failed",
        )
        sealed = [encrypt_upload(f, key, content_type="image/jpeg", use="frames") for f in frames]
        one_plain = [*sealed[:5], frames[5], *sealed[6:]]
        types = ["application/jose"] * len(frames)
        types[5] = "image/jpeg"
        assert_problem(
            _post_frames(env, path, spec, one_plain, stamps, content_type=types),
            415,
            "upload_not_encrypted",
        )
        as_video = [encrypt_upload(f, key, content_type="video/mp4", use="frames") for f in frames]
        assert_problem(
            _post_frames(env, path, spec, as_video, stamps, content_type="application/jose"),
            415,
            "unsupported_media_type",
        )
        assert _attempts_used(env, session) == 0
        r = _post_frames(env, path, spec, sealed, stamps, content_type="application/jose")
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "pass"


# --- decode_frames and parse_timestamps_ms, without the service -------------------------------


def _jpegs(sizes: Sequence[tuple[int, int]]) -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for w, h in sizes:
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append(encode(Image.fromarray(pixels), "JPEG", quality=80))
    return out


def test_decode_frames_makes_a_clip_in_seconds_from_the_first_frame() -> None:
    frames = _jpegs([(800, 600)] * 4)
    clip = decode_frames(frames, [1000.0, 1400.0, 1800.0, 2250.0], ClipLimits(max_side_out=400))
    assert clip.timestamps == (0.0, 0.4, 0.8, 1.25)
    assert clip.size == (400, 300)  # shrunk to the long side, aspect kept
    assert clip.source == "frames"
    assert all(not f.flags.writeable for f in clip.frames)
    png = encode(Image.new("RGB", (320, 240), (10, 20, 30)), "PNG")
    webp = encode(Image.new("RGB", (320, 240), (10, 20, 30)), "WEBP")
    mixed = decode_frames([png, webp], [0, 1000])
    assert mixed.size == (320, 240)
    assert int(np.asarray(mixed.frames[1])[..., 2].mean()) in range(25, 36)


@pytest.mark.parametrize(
    ("stamps", "code"),
    [
        ([0, 500, 500, 1200], ReasonCode.FRAMES_OUT_OF_ORDER),
        ([0, 600, 500, 1200], ReasonCode.FRAMES_OUT_OF_ORDER),
        ([0, 500, 1200], ReasonCode.FRAMES_MALFORMED),
        ([0, float("nan"), 800, 1200], ReasonCode.FRAMES_MALFORMED),
        ([0, 400, 800, float("inf")], ReasonCode.FRAMES_MALFORMED),
        ([0, 400, 800, 20_000], ReasonCode.CLIP_TOO_LONG),
        ([0, 100, 200, 300], ReasonCode.CLIP_TOO_SHORT),
    ],
)
def test_decode_frames_refuses_bad_timestamps_before_decoding(
    stamps: list[float], code: ReasonCode
) -> None:
    # The frames are not images at all: a timestamp error must come before any decoding.
    with pytest.raises(ClipError) as caught:
        decode_frames([b"not an image"] * 4, stamps)
    assert caught.value.code is code
    assert "not an image" not in str(caught.value)


def test_decode_frames_limits_count_bytes_and_size() -> None:
    frames = _jpegs([(160, 120)] * 4)
    with pytest.raises(ClipError) as caught:
        decode_frames(frames, [0, 400, 800, 1200], ClipLimits(max_frames=3))
    assert caught.value.code is ReasonCode.CLIP_TOO_LONG
    with pytest.raises(ClipError) as caught:
        decode_frames(frames, [0, 400, 800, 1200], ClipLimits(max_bytes=sum(map(len, frames)) - 1))
    assert caught.value.code is ReasonCode.CLIP_TOO_LONG
    odd = _jpegs([(160, 120), (160, 120), (120, 160), (160, 120)])
    with pytest.raises(ClipError) as caught:
        decode_frames(odd, [0, 400, 800, 1200])
    assert caught.value.code is ReasonCode.FRAMES_MALFORMED
    assert caught.value.context["frame"] == 2
    big = _jpegs([(400, 300)] * 2)
    with pytest.raises(ClipError) as caught:
        decode_frames(big, [0, 1200], ClipLimits(max_input_pixels=100_000))
    assert caught.value.code is ReasonCode.IMAGE_TOO_MANY_PIXELS
    assert caught.value.context["frame"] == 0


def test_parse_timestamps_ms() -> None:
    assert parse_timestamps_ms("[0, 66.5, 133]") == [0.0, 66.5, 133.0]
    assert parse_timestamps_ms("[]") == []
    for text in ("", "[", "{}", '"0"', "[null]", "[false]", "[NaN]", "[Infinity]", "[1e999]", "1"):
        with pytest.raises(ClipError) as caught:
            parse_timestamps_ms(text)
        assert caught.value.code is ReasonCode.FRAMES_MALFORMED, text


def test_new_reason_codes_have_both_messages() -> None:
    for code in (ReasonCode.FRAMES_OUT_OF_ORDER, ReasonCode.FRAMES_MALFORMED):
        reason = describe(code)
        assert reason.message_en
        assert reason.message_ko
        assert reason.message_en != reason.message_ko


def test_openapi_documents_the_frames_body(fenv: Env) -> None:
    spec = fenv.client.get("/openapi.json").json()
    body = spec["paths"]["/v1/capture/{token}/frames"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert set(schema["required"]) == {"frame", "timestamps", "challenge"}
    assert schema["properties"]["frame"]["type"] == "array"
    assert "422" in spec["paths"]["/v1/capture/{token}/frames"]["post"]["responses"]
