"""Shared fixtures: one FaceComparer, in-memory test images, CLI runners, the shared-data locator.

Every image is made here from the public-domain example portrait (NASA's astronaut photo shipped
inside scikit-image), so the suite runs anywhere; only tests marked `shared_data` read
`../shared/data`, and they skip with a message when it is absent.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

if TYPE_CHECKING:
    from faceproof.comparison import FaceComparer

# onnxruntime (>= 1.2x wheels) ships Microsoft 1DS telemetry: on import it writes a device id and
# an event database under ~/.cache/Microsoft and later tries to reach its collector. Keep the test
# process itself quiet. This must happen before onnxruntime is first imported (nothing above
# imports it). The subprocess tests in test_privacy.py remove the variable again on purpose, so
# they measure what the product does on its own.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"

SECRET_MARKER = b"FACEPROOF-SECRET-MARKER"


# --- images -----------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on loopback (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def crafted_png(width: int, height: int) -> bytes:
    """An 8-bit RGB PNG whose header claims width x height, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _png_chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Images:
    """The example portrait and variants of it, each as encoded file bytes."""

    portrait: Image.Image  # 512x512 RGB
    jpeg: bytes  # the portrait, JPEG q92
    png: bytes
    webp: bytes
    flipped: bytes  # mirrored
    relit: bytes  # 30 % darker, JPEG q60
    example_b: bytes  # mirrored + relit + q60, like faceproof.examples.example_pair()
    grey: bytes  # Pillow mode "L" JPEG
    cmyk: bytes  # Pillow mode "CMYK" JPEG
    upright_crop: Image.Image  # 512 wide x 400 high crop of the portrait (face kept)
    exif_rotated: bytes  # that crop stored rotated 90° CCW, EXIF orientation 6 makes it upright
    rotated_no_tag: bytes  # the same rotated pixels without the tag: the face lies sideways
    blurred: bytes
    dark: bytes
    bright: bytes
    two_faces: bytes  # two copies of the portrait side by side
    flat_grey: bytes  # no face
    noise: bytes  # no face
    small_face: bytes  # the portrait at 120 px in a 400x400 canvas: a ~21 px wide face
    empty: bytes
    truncated: bytes  # the JPEG cut in half
    random_bytes: bytes  # no known magic; contains SECRET_MARKER
    animated_gif: bytes
    bomb_png: bytes  # 20000x20000 PNG header in under 100 bytes


def _scaled(portrait: Image.Image, factor: float) -> Image.Image:
    arr = np.asarray(portrait).astype(np.float32) * factor
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_images() -> Images:
    from faceproof.examples import example_portrait

    portrait = example_portrait().convert("RGB")
    mirrored = portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    upright = portrait.crop((0, 0, 512, 400))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # 90° counter-clockwise on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° CW to display": undoes the CCW rotation above

    two = Image.new("RGB", (1024, 512))
    two.paste(portrait, (0, 0))
    two.paste(portrait, (512, 0))

    small = Image.new("RGB", (400, 400), (128, 128, 128))
    small.paste(portrait.resize((120, 120), Image.Resampling.LANCZOS), (140, 140))

    rng = np.random.default_rng(20240607)
    noise = Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8))
    random_bytes = b"RND" + rng.bytes(2000) + SECRET_MARKER + rng.bytes(2000)

    jpeg = encode(portrait, "JPEG", quality=92)
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    return Images(
        portrait=portrait,
        jpeg=jpeg,
        png=encode(portrait, "PNG"),
        webp=encode(portrait, "WEBP", quality=90),
        flipped=encode(mirrored, "JPEG", quality=92),
        relit=encode(ImageEnhance.Brightness(portrait).enhance(0.7), "JPEG", quality=60),
        example_b=encode(ImageEnhance.Brightness(mirrored).enhance(0.75), "JPEG", quality=60),
        grey=encode(portrait.convert("L"), "JPEG", quality=92),
        cmyk=encode(portrait.convert("CMYK"), "JPEG", quality=92),
        upright_crop=upright,
        exif_rotated=encode(stored, "JPEG", quality=92, exif=exif),
        rotated_no_tag=encode(stored, "JPEG", quality=92),
        blurred=encode(portrait.filter(ImageFilter.GaussianBlur(6)), "JPEG", quality=92),
        dark=encode(_scaled(portrait, 0.15), "PNG"),
        bright=encode(_scaled(portrait, 2.0), "PNG"),
        two_faces=encode(two, "JPEG", quality=92),
        flat_grey=encode(Image.new("RGB", (400, 400), (128, 128, 128)), "PNG"),
        noise=encode(noise, "PNG"),
        small_face=encode(small, "PNG"),
        empty=b"",
        truncated=jpeg[: len(jpeg) // 2],
        random_bytes=random_bytes,
        animated_gif=encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        bomb_png=crafted_png(20_000, 20_000),
    )


@pytest.fixture(scope="session")
def images() -> Images:
    return make_images()


@pytest.fixture(scope="session")
def image_files(images: Images, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Some of the images written to a temporary folder, by name (absolute paths)."""
    folder = tmp_path_factory.mktemp("images")
    contents = {
        "a.jpg": images.jpeg,
        "b.jpg": images.example_b,
        "relit.jpg": images.relit,
        "empty.jpg": images.empty,
        "truncated.jpg": images.truncated,
        "random.bin": images.random_bytes,
        "grey.png": images.flat_grey,
        "two.jpg": images.two_faces,
        "small.png": images.small_face,
    }
    paths = {}
    for name, data in contents.items():
        path = folder / name
        path.write_bytes(data)
        paths[name] = path
    paths["missing.jpg"] = folder / "missing.jpg"  # never written
    return paths


@pytest.fixture(scope="session")
def rgb(images: Images) -> np.ndarray[Any, Any]:
    """The portrait as a C-contiguous HxWx3 uint8 RGB array."""
    return np.ascontiguousarray(np.asarray(images.portrait, dtype=np.uint8))


# --- models -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def comparer() -> FaceComparer:
    """One FaceComparer with the packaged models and calibration, for the whole session."""
    from faceproof.comparison import FaceComparer

    return FaceComparer()


# --- CLI --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        """The single JSON object on stdout (fails if stdout holds anything else)."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line of JSON on stdout, got {self.out!r}"
        return json.loads(lines[0])

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run `faceproof.cli.main.main(argv)` in-process; returns exit code, stdout and stderr."""
    from faceproof.cli.main import main

    def run(*argv: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        try:
            code = main([os.fspath(a) for a in argv])
        except SystemExit as exc:  # argparse reports usage errors this way
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_cli_subprocess(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh interpreter (same venv as the tests)."""
    return subprocess.run(
        [sys.executable, "-m", "faceproof.cli.main", *[os.fspath(a) for a in args]],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def cli_subprocess() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli_subprocess


# --- ../shared/data ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository, or a skip that says where it was looked for."""
    if not (SHARED_DATA / "faces" / "labels.csv").is_file():
        pytest.skip(
            f"../shared/data not present: {SHARED_DATA} (with faces/labels.csv) is the "
            "evaluation-only data set kept beside the repository; see README 'Data'"
        )
    return SHARED_DATA


def longest_number_list(value: Any) -> int:
    """The longest run of numbers in any list of a JSON-like value (an embedding is 128 long)."""
    if isinstance(value, dict):
        return max((longest_number_list(v) for v in value.values()), default=0)
    if isinstance(value, list | tuple):
        here = sum(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        return max([here, *(longest_number_list(v) for v in value)])
    return 0


# --- liveness clips (generated from the example portrait, encoded in memory) -----------------

# ChallengeIssuer(rng=random.Random(CHALLENGE_SEED)).issue(...) first draws two actions the
# tests use (turn_right, turn_left); the generated heads can perform every action.
CHALLENGE_SEED = 22
CHALLENGE_ACTIONS = ("turn_right", "turn_left")
CHALLENGE_WINDOWS = ((0.6, 2.6), (2.6, 4.6))


def encode_clip(clip: Any, fmt: str = "mp4", codec: str = "mpeg4") -> bytes:
    """A `liveness.Clip` as a video file in memory (PyAV; mpeg4 in MP4 by default)."""
    from faceproof.liveness.synthetic import encode_video

    return encode_video(clip, fmt, codec)


@pytest.fixture(scope="session")
def scene_kit() -> Any:
    from faceproof.liveness.synthetic import SceneKit

    return SceneKit.build()


@pytest.fixture(scope="session")
def liveness_engine() -> Any:
    from faceproof.liveness import LivenessEngine

    return LivenessEngine()


@pytest.fixture(scope="session")
def head_turn_mp4(scene_kit: Any) -> bytes:
    """A bona fide-like head performing CHALLENGE_ACTIONS in CHALLENGE_WINDOWS, as MP4 bytes."""
    from faceproof.liveness.synthetic import bona_fide_clip, challenge_motion

    motion = challenge_motion(CHALLENGE_ACTIONS, CHALLENGE_WINDOWS)
    return encode_clip(bona_fide_clip(scene_kit, "challenge", seconds=5.0, motion=motion))


@pytest.fixture(scope="session")
def print_attack_mp4(scene_kit: Any) -> bytes:
    """A printed photo tilted in front of the camera (a presentation attack), as MP4 bytes."""
    from faceproof.liveness.synthetic import attack_clip

    return encode_clip(attack_clip(scene_kit, "print_tilt", seed=5, seconds=5.0))


# --- ID card specimens (documents/ specimen generator, the example portrait) ----------------

#: The API tests' clock (test_api.T0, 2026-05-01 09:00 UTC) is this date in Korea; the offline
#: CLI tests pass it as `--today`.
CARD_TODAY = date(2026, 5, 1)


@dataclass(frozen=True)
class Card:
    """A photographed specimen card as JPEG bytes and its ground truth (synthetic data; the raw
    number is here only so that tests can look for it where it must never be)."""

    jpeg: bytes
    type: str
    fields: dict[str, str]

    def registry_entry(self, status: str = "valid") -> dict[str, str]:
        """The card as the issuer simulator's registry holds it."""
        keys = ("number", "issue_date", "license_number")
        return {
            "type": self.type,
            "name": self.fields["name_ko"],
            "status": status,
            **{k: self.fields[k] for k in keys if k in self.fields},
        }


def make_card(
    doc_type: str = "kr_resident_card",
    *,
    seed: int = 3,
    expired: bool = False,
    today: date = CARD_TODAY,
    quality: int = 85,
) -> Card:
    from faceproof.documents import DocumentType
    from faceproof.documents.specimen import photograph, render_specimen
    from faceproof.examples import example_portrait

    spec = render_specimen(
        DocumentType(doc_type),
        seed=seed,
        today=today,
        portrait=example_portrait(),
        expired=expired,
    )
    photo = photograph(spec, seed=seed)
    return Card(encode(photo.image, "JPEG", quality=quality), doc_type, dict(spec.fields))


@pytest.fixture(scope="session")
def card() -> Card:
    """A resident registration card (주민등록증) with the example portrait, photographed."""
    return make_card()


@pytest.fixture(scope="session")
def expired_card() -> Card:
    """A driver's licence whose expiry date lies before CARD_TODAY."""
    return make_card("kr_driver_license", seed=4, expired=True)


@dataclass
class IssuerSim:
    """The issuer (진위확인) simulator running on loopback; `stop()` makes it unreachable."""

    url: str
    server: Any

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


IssuerFactory = Callable[[list[dict[str, str]]], IssuerSim]


@pytest.fixture
def issuer_sim() -> Iterator[IssuerFactory]:
    """Start the simulator with registry entries (`Card.registry_entry`); stopped at teardown."""
    from faceproof.documents.issuer import IssuerRegistry, make_server, serve_in_thread

    started: list[IssuerSim] = []

    def start(cards: list[dict[str, str]]) -> IssuerSim:
        server = make_server(IssuerRegistry.from_json({"cards": cards}))
        serve_in_thread(server)
        sim = IssuerSim(f"http://127.0.0.1:{server.server_address[1]}", server)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
