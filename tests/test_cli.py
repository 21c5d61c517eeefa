"""The command line contract: output shapes, exit codes, errors without tracebacks."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from faceproof.comparison import FaceComparer
from faceproof.faces.matcher import MatcherCalibration
from faceproof.models import REGISTRY
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    from conftest import CliRunner

SFACE = "sface-2021dec-int8bq"
REASON_VALUES = {code.value for code in ReasonCode}
SubprocessRunner = Callable[..., subprocess.CompletedProcess[str]]


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


def write_pairs(path: Path, rows: list[tuple[Any, ...]], header: str = "path_a,path_b") -> Path:
    lines = [header, *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- compare A B ------------------------------------------------------------------------------


def test_compare_json_contract(cli: CliRunner, image_files: dict[str, Path]) -> None:
    result = cli("compare", image_files["a.jpg"], image_files["b.jpg"], "--json")
    assert result.code == 0
    assert result.out.count("\n") == 1  # exactly one line: one JSON object
    data = result.json()
    assert isinstance(data, dict)
    assert set(data) >= {"score", "match", "threshold", "fmr_target", "reasons", "faces"}
    calibration = MatcherCalibration.load()
    assert isinstance(data["score"], float)
    assert data["match"] is True
    assert data["score"] >= data["threshold"]
    assert data["threshold"] == pytest.approx(calibration.threshold, abs=1e-4)
    assert data["fmr_target"] == calibration.fmr_target
    assert data["reasons"][0] == "match_accepted"
    assert set(data["reasons"]) <= REASON_VALUES
    assert [m["code"] for m in data["messages"]] == data["reasons"]
    assert all(m["message_en"] and m["message_ko"] for m in data["messages"])
    assert data["matcher"]["path"] in {"primary_only", "fusion"}
    for side in ("a", "b"):
        face = data["faces"][side]
        assert set(face) >= {"box", "detection_confidence", "inter_eye_px", "face_count"}
        assert face["face_count"] == 1
        assert {"sharpness", "brightness", "yaw"} <= set(face["quality"])
        for item in face["quality"].values():
            assert set(item) >= {"name", "value", "unit", "bound", "ok"}
    no_traceback(result.err)


def test_compare_example_prints_match(cli: CliRunner) -> None:
    result = cli("compare", "--example")
    assert result.code == 0
    assert "MATCH" in result.out
    assert "NO MATCH" not in result.out
    assert "match_accepted" in result.out


def test_no_match_exits_1(cli: CliRunner, image_files: dict[str, Path], tmp_path: Path) -> None:
    strict = dataclasses.replace(MatcherCalibration.load(), threshold=1e9)
    calibration = tmp_path / "strict.json"
    calibration.write_text(json.dumps(strict.to_dict()), encoding="utf-8")
    a, b = image_files["a.jpg"], image_files["b.jpg"]

    human = cli("compare", a, b, "--calibration", calibration)
    assert human.code == 1
    assert "NO MATCH" in human.out
    assert "match_rejected" in human.out

    as_json = cli("compare", a, b, "--calibration", calibration, "--json")
    assert as_json.code == 1
    assert as_json.json()["match"] is False
    assert as_json.json()["reasons"][0] == "match_rejected"


BAD_IMAGES = [
    ("empty.jpg", "image_empty"),
    ("truncated.jpg", "image_truncated"),
    ("random.bin", "image_unsupported_format"),
    ("grey.png", "face_not_found"),
    ("two.jpg", "face_multiple"),
    ("small.png", "face_too_small"),
    ("missing.jpg", "image_unreadable_file"),
]


@pytest.mark.parametrize(("name", "code"), BAD_IMAGES)
def test_unusable_image_exits_3_with_its_reason(
    cli: CliRunner, image_files: dict[str, Path], name: str, code: str
) -> None:
    result = cli("compare", image_files["a.jpg"], image_files[name])
    assert result.code == 3
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1  # one line, no traceback
    assert code in lines[0]
    no_traceback(result.output)


@pytest.mark.parametrize(("name", "code"), BAD_IMAGES)
def test_unusable_image_with_json_prints_an_error_object(
    cli: CliRunner, image_files: dict[str, Path], name: str, code: str
) -> None:
    result = cli("compare", image_files[name], image_files["a.jpg"], "--json")
    assert result.code == 3
    data = result.json()
    assert set(data) == {"error"}
    assert data["error"]["code"] == code
    assert isinstance(data["error"]["message"], str)
    assert data["error"]["message"]
    no_traceback(result.output)


# --- usage errors: exit 2 ---------------------------------------------------------------------


def usage_cases(files: dict[str, Path], tmp: Path) -> dict[str, list[Any]]:
    a, b = files["a.jpg"], files["b.jpg"]
    good_pairs = write_pairs(tmp / "good.csv", [(a, b)])
    bad_pairs = write_pairs(tmp / "bad.csv", [(a, b)], header="left,right")
    return {
        "one image": ["compare", a],
        "three images": ["compare", a, b, a],
        "no image": ["compare"],
        "pairs with image args": ["compare", "--pairs", good_pairs, a],
        "example with image args": ["compare", "--example", a],
        "pairs CSV without path_a,path_b": ["compare", "--pairs", bad_pairs],
        "nonexistent pairs file": ["compare", "--pairs", tmp / "nope.csv"],
        "onnx path without sha": ["compare", a, b, "--recogniser-onnx", a],
        "unknown command": ["frobnicate"],
        "calibrate without labels": ["calibrate", "--out", tmp / "x.json"],
    }


@pytest.mark.parametrize(
    "case",
    [
        "one image",
        "three images",
        "no image",
        "pairs with image args",
        "example with image args",
        "pairs CSV without path_a,path_b",
        "nonexistent pairs file",
        "onnx path without sha",
        "unknown command",
        "calibrate without labels",
    ],
)
def test_usage_error_exits_2(
    cli: CliRunner, image_files: dict[str, Path], tmp_path: Path, case: str
) -> None:
    result = cli(*usage_cases(image_files, tmp_path)[case])
    assert result.code == 2
    assert result.out == ""
    assert result.err.strip()  # says what is wrong
    no_traceback(result.output)


@pytest.mark.parametrize("case", ["pairs CSV without path_a,path_b", "nonexistent pairs file"])
def test_bad_pairs_file_is_labels_invalid(
    cli: CliRunner, image_files: dict[str, Path], tmp_path: Path, case: str
) -> None:
    result = cli(*usage_cases(image_files, tmp_path)[case])
    assert result.code == 2
    assert "labels_invalid" in result.err


# --- server-side failures: exit 4 -------------------------------------------------------------


@pytest.mark.parametrize("content", [None, "{not json", '{"primary": "x"}'])
def test_bad_calibration_file_exits_4(
    cli: CliRunner, image_files: dict[str, Path], tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "calibration.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = cli("compare", image_files["a.jpg"], image_files["b.jpg"], "--calibration", path)
    assert result.code == 4
    assert len(result.err.strip().splitlines()) == 1
    assert "calibration_invalid" in result.err
    no_traceback(result.output)


def test_model_failing_its_checksum_exits_4(
    cli: CliRunner, image_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, SFACE, dataclasses.replace(REGISTRY[SFACE], sha256="0" * 64))
    result = cli("compare", image_files["a.jpg"], image_files["b.jpg"], "--json")
    assert result.code == 4
    assert result.json()["error"]["code"] == "model_checksum_mismatch"
    no_traceback(result.output)


# --- compare --pairs --------------------------------------------------------------------------


@pytest.fixture
def pairs_rows(image_files: dict[str, Path]) -> list[tuple[Path, Path, str]]:
    f = image_files
    return [
        (f["a.jpg"], f["b.jpg"], "x1"),
        (f["a.jpg"], f["empty.jpg"], "x2"),
        (f["b.jpg"], f["a.jpg"], "x3"),
        (f["missing.jpg"], f["a.jpg"], "x4"),
        (f["a.jpg"], f["two.jpg"], "x5"),
        (f["relit.jpg"], f["b.jpg"], "x6"),
    ]


EXPECTED_ERRORS = {1: "image_empty", 3: "image_unreadable_file", 4: "face_multiple"}


def check_pairs_output(lines: list[dict[str, Any]], rows: list[tuple[Path, Path, str]]) -> None:
    assert len(lines) == len(rows)
    for i, (line, (a, b, _)) in enumerate(zip(lines, rows, strict=True)):
        assert line["path_a"] == str(a)
        assert line["path_b"] == str(b)
        if i in EXPECTED_ERRORS:
            assert set(line) == {"path_a", "path_b", "error"}
            assert set(line["error"]) == {"code", "message"}
            assert line["error"]["code"] == EXPECTED_ERRORS[i]
        else:
            assert set(line) == {"path_a", "path_b", "score", "match"}
            assert isinstance(line["score"], float)
            assert line["match"] is True
    # Rows 0 and 2 are the same pair in both orders.
    assert lines[0]["score"] == lines[2]["score"]


def test_pairs_jsonl(
    cli: CliRunner, tmp_path: Path, pairs_rows: list[tuple[Path, Path, str]]
) -> None:
    csv_path = write_pairs(tmp_path / "pairs.csv", pairs_rows, header="path_a,path_b,extra")
    result = cli("compare", "--pairs", csv_path, "--jsonl")
    assert result.code == 0
    check_pairs_output(result.json_lines(), pairs_rows)
    assert "x1" not in result.out  # the extra column is ignored, not echoed
    no_traceback(result.output)


def test_pairs_from_stdin(
    cli: CliRunner,
    tmp_path: Path,
    pairs_rows: list[tuple[Path, Path, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = write_pairs(tmp_path / "p.csv", pairs_rows, header="path_a,path_b,extra").read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    result = cli("compare", "--pairs", "-", "--jsonl")
    assert result.code == 0
    check_pairs_output(result.json_lines(), pairs_rows)


def test_pairs_embed_each_distinct_image_once(
    cli: CliRunner,
    tmp_path: Path,
    pairs_rows: list[tuple[Path, Path, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = FaceComparer.template

    def spy(self: FaceComparer, image: Any) -> Any:
        calls.append(str(image))
        return original(self, image)

    monkeypatch.setattr(FaceComparer, "template", spy)
    rows = pairs_rows * 3  # 18 rows over 6 distinct images
    csv_path = write_pairs(tmp_path / "pairs.csv", rows, header="path_a,path_b,extra")
    result = cli("compare", "--pairs", csv_path, "--jsonl")
    assert result.code == 0
    assert len(result.json_lines()) == len(rows)
    distinct = {str(p) for a, b, _ in rows for p in (a, b)}
    assert len(distinct) == 6
    assert Counter(calls) == dict.fromkeys(distinct, 1)


def test_pairs_paths_are_relative_to_the_csv(
    cli: CliRunner,
    tmp_path: Path,
    image_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Like labels.csv and the shared data's pairs.csv: relative paths are read from the CSV's
    # folder, whatever the working directory; from stdin they are relative to the working
    # directory. Output echoes the paths as written.
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "a.jpg").write_bytes(image_files["a.jpg"].read_bytes())
    (batch / "b.jpg").write_bytes(image_files["b.jpg"].read_bytes())
    csv_path = write_pairs(batch / "pairs.csv", [("a.jpg", "b.jpg")])
    monkeypatch.chdir(tmp_path)  # not the CSV's folder
    result = cli("compare", "--pairs", csv_path, "--jsonl")
    assert result.code == 0
    (line,) = result.json_lines()
    assert "error" not in line, line
    assert (line["path_a"], line["path_b"]) == ("a.jpg", "b.jpg")
    assert line["match"] is True

    monkeypatch.setattr(sys, "stdin", io.StringIO("path_a,path_b\nbatch/a.jpg,batch/b.jpg\n"))
    (from_stdin,) = cli("compare", "--pairs", "-", "--jsonl").json_lines()
    assert from_stdin["match"] is True
    assert from_stdin["path_a"] == "batch/a.jpg"


# --- models -----------------------------------------------------------------------------------


def test_models_lists_every_model_verified(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal
    result = cli("models")
    assert result.code == 0
    for model_id in REGISTRY:
        assert model_id in result.out
    assert result.out.count(" ok ") == len(REGISTRY)


def test_models_lists_full_ids_at_80_columns(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("models")
    assert result.code == 0
    missing = [model_id for model_id in REGISTRY if model_id not in result.out]
    assert missing == []


def test_models_json_matches_the_registry(cli: CliRunner) -> None:
    result = cli("models", "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    assert [row["id"] for row in rows] == list(REGISTRY)
    for row in rows:
        spec = REGISTRY[row["id"]]
        assert row["sha256"] == spec.sha256
        assert row["verified"] == "ok"
        assert row["source"] == f"{spec.source_package}=={spec.source_version}"


def test_models_reports_a_checksum_failure_with_exit_4(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, SFACE, dataclasses.replace(REGISTRY[SFACE], sha256="f" * 64))
    result = cli("models", "--json")
    assert result.code == 4
    verified = {row["id"]: row["verified"] for row in json.loads(result.out)}
    assert verified[SFACE] == "model_checksum_mismatch"
    assert all(v == "ok" for k, v in verified.items() if k != SFACE)

    skipped = cli("models", "--json", "--no-verify")  # no hashing: nothing to fail
    assert skipped.code == 0
    assert all("verified" not in row for row in json.loads(skipped.out))


# --- the real console entry point, end to end -------------------------------------------------


def test_subprocess_compare_json(
    cli_subprocess: SubprocessRunner, image_files: dict[str, Path], tmp_path: Path
) -> None:
    proc = cli_subprocess(
        "compare", image_files["a.jpg"], image_files["b.jpg"], "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["match"] is True
    no_traceback(proc.stdout, proc.stderr)


def test_subprocess_bad_image_exit_3_without_traceback(
    cli_subprocess: SubprocessRunner, image_files: dict[str, Path], tmp_path: Path
) -> None:
    proc = cli_subprocess("compare", image_files["a.jpg"], image_files["empty.jpg"], cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "image_empty" in proc.stderr
    no_traceback(proc.stdout, proc.stderr)


def test_console_script_is_installed_and_runs(tmp_path: Path) -> None:
    (entry,) = [
        e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "faceproof"
    ]
    assert entry.value == "faceproof.cli.main:main"
    script = Path(sys.executable).parent / "faceproof"
    if not script.is_file():
        pytest.skip(f"no console script next to {sys.executable}")
    proc = subprocess.run(
        [str(script), "models", "--json", "--no-verify"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [row["id"] for row in json.loads(proc.stdout)] == list(REGISTRY)


def test_subprocess_pairs_output_closed_early_gives_no_traceback(
    image_files: dict[str, Path], tmp_path: Path
) -> None:
    # Far more output than a pipe buffers (64 KiB), so the writer must hit the closed pipe.
    rows = [(image_files["a.jpg"], image_files["b.jpg"])] * 3000
    csv_path = write_pairs(tmp_path / "many.csv", rows)
    with subprocess.Popen(
        [sys.executable, "-m", "faceproof.cli.main", "compare", "--pairs", str(csv_path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        assert json.loads(first)["match"] is True
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read()
        proc.wait(timeout=120)
    no_traceback(err)
    assert proc.returncode != 1  # 1 means "the faces do not match"
