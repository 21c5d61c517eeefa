"""No biometric persistence: nothing from a face reaches disk, output, logs or error messages.

The CLI runs in a subprocess whose HOME, TMPDIR and working directory are fresh folders, so
anything it writes is found afterwards. ORT_DISABLE_TELEMETRY is removed from its environment so
that the product is measured as it ships.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from faceproof.comparison import FaceComparer
from faceproof.errors import FaceproofError, InputError
from faceproof.faces.matcher import MatcherCalibration
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    from conftest import CliRunner, Images

SubprocessRunner = Callable[..., subprocess.CompletedProcess[str]]
SECRET_MARKER = b"FACEPROOF-SECRET-MARKER"  # conftest puts it inside images.random_bytes
MAGIC = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "webp": b"RIFF",
    "numpy": b"\x93NUMPY",
}
# 16 or more numbers with a fractional part in a row: how an embedding looks when printed as
# JSON, a Python list or a numpy array.
FLOAT_RUN = re.compile(r"(?:[-+]?\d*\.\d+(?:[eE][-+]?\d+)?[\s,;\[\]]+){16,}")


# --- the sandboxed runs -----------------------------------------------------------------------


@dataclass
class Sandbox:
    home: Path
    tmp: Path
    cwd: Path
    inputs: dict[str, bytes]
    runs: dict[str, subprocess.CompletedProcess[str]]

    def files(self, *roots: Path) -> list[Path]:
        return sorted(p for root in roots for p in root.rglob("*") if p.is_file())

    def outputs(self) -> Iterator[tuple[str, str]]:
        for name, proc in self.runs.items():
            yield f"{name} stdout", proc.stdout
            yield f"{name} stderr", proc.stderr


def sandbox_env(home: Path, tmp: Path, *, telemetry_off: bool) -> dict[str, str]:
    # XDG_* or MPLCONFIGDIR would send cache writes outside the folders being watched.
    dropped = {"ORT_DISABLE_TELEMETRY", "MPLCONFIGDIR", "TMP", "TEMP", "PYTHONPYCACHEPREFIX"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("XDG_")}
    env.update(HOME=str(home), TMPDIR=str(tmp), TMP=str(tmp), TEMP=str(tmp))
    if telemetry_off:
        env["ORT_DISABLE_TELEMETRY"] = "1"
    return env


def run_sandbox(
    factory: pytest.TempPathFactory,
    images: Images,
    run_cli: SubprocessRunner,
    *,
    telemetry_off: bool,
    with_error: bool,
) -> Sandbox:
    root = factory.mktemp("sandbox")
    home, tmp, cwd = root / "home", root / "tmp", root / "cwd"
    for folder in (home, tmp, cwd):
        folder.mkdir()
    inputs = {
        "a.jpg": images.jpeg,
        "b.jpg": images.example_b,
        "secret.bin": images.random_bytes,
        "pairs.csv": b"path_a,path_b\na.jpg,b.jpg\nb.jpg,secret.bin\n",
    }
    for name, data in inputs.items():
        (cwd / name).write_bytes(data)
    env = sandbox_env(home, tmp, telemetry_off=telemetry_off)
    commands = {
        "pairs": ["compare", "--pairs", "pairs.csv", "--jsonl"],
        "json": ["compare", "a.jpg", "b.jpg", "--json"],
    }
    if with_error:
        commands["error"] = ["compare", "a.jpg", "secret.bin"]
    runs = {name: run_cli(*argv, cwd=cwd, env=env) for name, argv in commands.items()}
    return Sandbox(home, tmp, cwd, inputs, runs)


@pytest.fixture(scope="module")
def sandbox(
    tmp_path_factory: pytest.TempPathFactory, images: Images, cli_subprocess: SubprocessRunner
) -> Sandbox:
    """The CLI as shipped (onnxruntime telemetry left at its default)."""
    return run_sandbox(
        tmp_path_factory, images, cli_subprocess, telemetry_off=False, with_error=True
    )


@pytest.fixture(scope="module")
def sandbox_without_telemetry(
    tmp_path_factory: pytest.TempPathFactory, images: Images, cli_subprocess: SubprocessRunner
) -> Sandbox:
    return run_sandbox(
        tmp_path_factory, images, cli_subprocess, telemetry_off=True, with_error=False
    )


@pytest.fixture(scope="module")
def embedding_bytes(comparer: FaceComparer, images: Images) -> list[bytes]:
    """64-byte prefixes of the embeddings the sandboxed runs computed, as float32 and float64."""
    out = []
    for data in (images.jpeg, images.example_b):
        template = comparer.extend(comparer.template(data))
        for vector in template.embeddings.values():
            out.append(np.asarray(vector[:16], dtype=np.float32).tobytes())
            out.append(np.asarray(vector[:8], dtype=np.float64).tobytes())
    return out


def test_sandboxed_runs_did_their_job(sandbox: Sandbox) -> None:
    # The checks below would be vacuous if the runs had failed early.
    pairs, as_json, error = sandbox.runs["pairs"], sandbox.runs["json"], sandbox.runs["error"]
    assert pairs.returncode == 0, pairs.stderr
    assert len(pairs.stdout.splitlines()) == 2
    assert '"match": true' in pairs.stdout.splitlines()[0]
    assert '"image_unsupported_format"' in pairs.stdout.splitlines()[1]
    assert as_json.returncode == 0, as_json.stderr
    assert '"match": true' in as_json.stdout
    assert error.returncode == 3
    assert "image_unsupported_format" in error.stderr


# --- disk -------------------------------------------------------------------------------------


def image_windows(data: bytes) -> list[bytes]:
    """32-byte aligned windows: any run of >= 64 bytes copied from `data` contains one."""
    windows = [data[i : i + 32] for i in range(0, len(data) - 31, 32)]
    return [w for w in windows if len(set(w)) >= 8]  # skip runs of padding or flat colour


def test_no_image_pixels_or_embeddings_are_written_anywhere(
    sandbox: Sandbox, embedding_bytes: list[bytes]
) -> None:
    images = [sandbox.inputs["a.jpg"], sandbox.inputs["b.jpg"]]
    windows = [w for data in images for w in image_windows(data)]
    assert len(windows) > 100
    written = [
        p
        for p in sandbox.files(sandbox.home, sandbox.tmp, sandbox.cwd)
        if p.parent != sandbox.cwd or p.name not in sandbox.inputs
    ]
    for path in written:
        content = path.read_bytes()
        for kind, magic in MAGIC.items():
            assert not content.startswith(magic), f"{path} starts like a {kind} file"
        assert MAGIC["numpy"] not in content, path
        assert not any(w in content for w in windows), f"{path} holds image bytes"
        assert not any(e in content for e in embedding_bytes), f"{path} holds an embedding"
        assert FLOAT_RUN.search(content.decode("latin-1")) is None, path


def test_working_directory_holds_only_what_the_test_wrote(sandbox: Sandbox) -> None:
    found = {
        p.relative_to(sandbox.cwd).as_posix(): p.read_bytes() for p in sandbox.files(sandbox.cwd)
    }
    assert found == sandbox.inputs


def test_home_and_tmp_stay_empty(sandbox: Sandbox) -> None:
    assert sandbox.files(sandbox.home, sandbox.tmp) == []


def test_faceproof_itself_writes_nothing_to_home_or_tmp(
    sandbox_without_telemetry: Sandbox,
) -> None:
    box = sandbox_without_telemetry
    assert all(proc.returncode == 0 for proc in box.runs.values())
    assert box.files(box.home, box.tmp) == []
    found = {p.relative_to(box.cwd).as_posix(): p.read_bytes() for p in box.files(box.cwd)}
    assert found == box.inputs


# --- stdout / stderr --------------------------------------------------------------------------


def test_float_run_pattern_catches_a_printed_embedding(
    comparer: FaceComparer, images: Images
) -> None:
    # The check below is only as good as this pattern: it must see an embedding in any format.
    vector = comparer.template(images.jpeg).embeddings["sface-2021dec-int8bq"]
    for text in (str(vector), repr(vector), str(vector.tolist()), ",".join(map(str, vector))):
        assert FLOAT_RUN.search(text) is not None
    assert FLOAT_RUN.search('{"score": 8.9182, "threshold": 3.4001, "cosine": 0.9464}') is None


def test_outputs_hold_no_embedding_or_input_bytes(sandbox: Sandbox) -> None:
    for label, text in sandbox.outputs():
        assert FLOAT_RUN.search(text) is None, label
        assert SECRET_MARKER.decode() not in text, label
        assert "Traceback" not in text, label


def marked_inputs(images: Images) -> dict[str, bytes]:
    """Unusable images that carry the secret marker in their bytes or metadata."""
    marker = SECRET_MARKER.decode()
    jpeg = io.BytesIO()
    images.portrait.save(jpeg, format="JPEG", quality=90, comment=SECRET_MARKER)
    png_info = PngImagePlugin.PngInfo()
    png_info.add_text("Comment", marker)
    no_face = io.BytesIO()
    Image.new("RGB", (300, 300), (128, 128, 128)).save(no_face, format="PNG", pnginfo=png_info)
    corrupt = bytearray(no_face.getvalue())
    corrupt[-40:-20] = bytes(20)  # break the IDAT data / CRC
    return {
        "random bytes": images.random_bytes,
        "truncated JPEG with a comment": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
        "PNG without a face, marker in tEXt": no_face.getvalue(),
        "corrupt PNG, marker in tEXt": bytes(corrupt),
        "text file": b"name,passport\n" + SECRET_MARKER + b",M12345678\n",
    }


def test_errors_do_not_echo_input_bytes(
    comparer: FaceComparer,
    images: Images,
    cli: CliRunner,
    tmp_path: Path,
    image_files: dict[str, Path],
) -> None:
    marker = SECRET_MARKER.decode()
    for name, data in marked_inputs(images).items():
        assert SECRET_MARKER in data, name
        with pytest.raises(InputError) as info:
            comparer.template(data)
        error = info.value
        for text in (str(error), repr(error), error.detail, repr(error.to_dict())):
            assert marker not in text, name
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        for extra in ((), ("--json",)):
            result = cli("compare", image_files["a.jpg"], path, *extra)
            assert result.code == 3, name
            assert marker not in result.output, name
            assert error.code.value in result.output, name


def test_error_context_holds_no_pixels(comparer: FaceComparer, images: Images) -> None:
    for data in (images.two_faces, images.small_face, images.bomb_png, images.truncated):
        with pytest.raises(FaceproofError) as info:
            comparer.template(data)
        for value in info.value.context.values():
            assert isinstance(value, int | float | str), info.value.context
        assert len(repr(info.value.to_dict())) < 600


# --- logs -------------------------------------------------------------------------------------


def test_debug_logs_hold_no_embedding(
    caplog: pytest.LogCaptureFixture, images: Images, cli: CliRunner, image_files: dict[str, Path]
) -> None:
    caplog.set_level(logging.DEBUG)
    wide = dataclasses.replace(MatcherCalibration.load(), band_low=1e6, band_high=1e6)
    comparer = FaceComparer(wide)
    result = comparer.compare(images.png, images.relit)  # both recognisers run
    assert result.details.path == "fusion"
    with pytest.raises(InputError):
        comparer.template(images.random_bytes)
    assert cli("compare", image_files["a.jpg"], image_files["b.jpg"], "--json").code == 0

    for record in caplog.records:
        message = record.getMessage()
        assert FLOAT_RUN.search(message) is None, (record.name, message[:200])
        assert SECRET_MARKER.decode() not in message
        assert record.exc_text is None or FLOAT_RUN.search(record.exc_text) is None
    assert ReasonCode.MATCH_ACCEPTED in result.reasons
