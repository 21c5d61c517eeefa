"""Calibration and evaluation end to end on real faces from ../shared/data (skipped without it).

The working set is small on purpose (about 20 s on two cores): the face_recognition_ageitgey
photos plus ORL subjects s1..s5, written to a labels CSV in a temporary folder with paths
relative to that CSV, which is how `read_labels` resolves them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from faceproof.cli.main import main
from faceproof.comparison import FaceComparer, TemplateCache
from faceproof.errors import DataFileError, FaceproofError
from faceproof.evaluation.datasets import read_labels
from faceproof.evaluation.metrics import min_impostors_for_fmr
from faceproof.faces.matcher import MatcherCalibration
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    from conftest import CliRunner

AGEITGEY = "face_recognition_ageitgey"
ORL = "orl_att_faces"
ORL_SUBJECTS = {f"ORL_s{i}" for i in range(1, 6)}
USABLE_FACES = {"single", "partial", ""}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_main(*argv: str | os.PathLike[str]) -> Run:
    """main() with stdout/stderr captured (usable from module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([os.fspath(a) for a in argv])
    return Run(code, out.getvalue(), err.getvalue())


def write_labels(shared: Path, folder: Path, keep: Any) -> tuple[Path, list[dict[str, str]]]:
    """A labels CSV in `folder` with the shared rows `keep` accepts, paths relative to it."""
    faces = shared / "faces"
    with (faces / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if keep(r)]
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "labels.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "identity", "set", "faces"])
        writer.writeheader()
        for row in rows:
            relative = os.path.relpath(faces / row["path"], folder)
            writer.writerow({"path": relative, **{k: row[k] for k in ("identity", "set", "faces")}})
    return out, rows


def expected_pair_counts(rows: list[dict[str, str]]) -> tuple[int, int]:
    """(genuine, impostor) within-set pairs among single-identity usable rows."""
    usable = [
        r
        for r in rows
        if r["identity"].strip() and "|" not in r["identity"] and r["faces"] in USABLE_FACES
    ]
    genuine = impostor = 0
    by_set: dict[str, list[str]] = {}
    for r in usable:
        by_set.setdefault(r["set"], []).append(r["identity"])
    for identities in by_set.values():
        for x, y in itertools.combinations(identities, 2):
            genuine += x == y
            impostor += x != y
    return genuine, impostor


def small_set(row: dict[str, str]) -> bool:
    return row["set"] == AGEITGEY or (row["set"] == ORL and row["identity"] in ORL_SUBJECTS)


@pytest.fixture(scope="module")
def small_labels(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, str]]]:
    return write_labels(shared_data, tmp_path_factory.mktemp("labels") / "small", small_set)


@pytest.fixture(scope="module")
def calibrated(
    small_labels: tuple[Path, list[dict[str, str]]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, Path]:
    labels, _ = small_labels
    out = tmp_path_factory.mktemp("calibration") / "cal.json"
    return run_main("calibrate", "--labels", labels, "--out", out, "--fmr", "1e-2"), out


@pytest.fixture(scope="module")
def evaluated(
    small_labels: tuple[Path, list[dict[str, str]]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, Path]:
    labels, _ = small_labels
    out = tmp_path_factory.mktemp("eval") / "report"
    return run_main("eval", "verify", "--labels", labels, "--out", out, "--folds", "2"), out


# --- read_labels (no shared data needed) ------------------------------------------------------


def test_read_labels_resolves_paths_relative_to_the_csv(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "labels.csv").write_text(
        "path,identity,set,faces\n"
        "people/a.jpg,Ann,s,single\n"
        "people/b.jpg,Ann|Bob,s,multi\n"  # several people: left out
        "people/c.jpg,,s,single\n"  # unknown identity: left out
        "people/d.jpg,Bob,s,no_face\n"  # flagged without a face: left out
        "people/e.jpg,Bob,s,partial\n",
        encoding="utf-8",
    )
    images = read_labels(folder / "labels.csv")
    assert [(i.path, i.identity, i.subset) for i in images] == [
        (folder / "people/a.jpg", "Ann", "s"),
        (folder / "people/e.jpg", "Bob", "s"),
    ]
    (tmp_path / "bad.csv").write_text("file,name\nx.jpg,Ann\n", encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        read_labels(tmp_path / "bad.csv")
    assert info.value.code is ReasonCode.LABELS_INVALID


# --- calibrate --------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_calibrate_writes_a_loadable_calibration(
    calibrated: tuple[Run, Path], small_labels: tuple[Path, list[dict[str, str]]]
) -> None:
    run, path = calibrated
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    summary = json.loads(run.out)
    calibration = MatcherCalibration.load(path)
    packaged = MatcherCalibration.load()

    assert math.isfinite(calibration.threshold)
    assert calibration.fmr_target == 1e-2
    assert calibration.models == packaged.models
    genuine, impostor = expected_pair_counts(small_labels[1])
    assert calibration.n_genuine == genuine > 0
    assert calibration.n_impostor == impostor > 0
    # Rule of 3: FMR 1e-2 needs >= 300 impostor pairs. This set has ~1200 (ORL s1..s5 alone
    # gives 1000), so the threshold is *not* low-confidence here; the few-impostor case is
    # covered by the ageitgey-only calibration below.
    assert calibration.low_confidence is (impostor < min_impostors_for_fmr(1e-2))
    assert calibration.band_low >= 0
    assert calibration.band_high >= 0
    assert calibration.fusion_norm.impostor_std > 0
    for norm in calibration.norms.values():
        assert norm.impostor_std > 0
    assert summary["threshold"] == calibration.threshold
    assert summary["n_genuine"] == calibration.n_genuine
    assert summary["low_confidence"] == calibration.low_confidence


@pytest.mark.shared_data
def test_calibrate_with_few_impostors_is_low_confidence(
    shared_data: Path, tmp_path: Path, cli: CliRunner, image_files: dict[str, Path]
) -> None:
    labels, rows = write_labels(shared_data, tmp_path / "ageitgey", lambda r: r["set"] == AGEITGEY)
    genuine, impostor = expected_pair_counts(rows)
    assert impostor < min_impostors_for_fmr(1e-2)  # ~180 impostor pairs < 300
    out = tmp_path / "cal.json"
    run = run_main("calibrate", "--labels", labels, "--out", out, "--fmr", "1e-2")
    assert run.code == 0, run.err
    calibration = MatcherCalibration.load(out)
    assert calibration.low_confidence is True
    assert "provisional" in calibration.note
    assert math.isfinite(calibration.threshold)
    assert (calibration.n_genuine, calibration.n_impostor) == (genuine, impostor)

    # The provisional threshold is disclosed on every decision made with it.
    result = cli(
        "compare", image_files["a.jpg"], image_files["b.jpg"], "--calibration", out, "--json"
    )
    assert result.code in (0, 1)
    assert "threshold_low_confidence" in result.json()["reasons"]


@pytest.mark.shared_data
def test_compare_uses_the_calibration_file(
    calibrated: tuple[Run, Path], cli: CliRunner, image_files: dict[str, Path]
) -> None:
    _, path = calibrated
    calibration = MatcherCalibration.load(path)
    result = cli(
        "compare", image_files["a.jpg"], image_files["b.jpg"], "--calibration", path, "--json"
    )
    assert result.code == 0, result.output
    data = result.json()
    assert data["match"] is True  # an obvious genuine pair
    assert data["threshold"] == pytest.approx(calibration.threshold, abs=1e-4)
    assert data["fmr_target"] == 1e-2
    assert data["calibration"] == calibration.dataset
    assert data["calibration"] != MatcherCalibration.load().dataset


# --- eval verify ------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_eval_verify_writes_report_and_det_plot(
    evaluated: tuple[Run, Path], small_labels: tuple[Path, list[dict[str, str]]]
) -> None:
    run, out = evaluated
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    packaged = MatcherCalibration.load()

    assert set(report["reports"]) == {*packaged.models, "fusion", "product_cascade"}
    assert report["failures_to_enrol"] == {}
    n_usable = len(read_labels(small_labels[0]))
    assert report["n_images"] == n_usable
    genuine, impostor = expected_pair_counts(small_labels[1])
    for name, per_set in report["reports"].items():
        pooled = per_set["all"]
        assert pooled["fte_rate"] == 0, name
        assert (pooled["n_genuine"], pooled["n_impostor"]) == (genuine, impostor), name
        assert 0.5 < pooled["auc"] <= 1.0, name
        assert {AGEITGEY, ORL} <= set(per_set), name
    assert report["cross_validation"]["folds"] == 2
    assert 0.0 <= report["second_opinion_rate"] <= 1.0

    det = (out / "det.png").read_bytes()
    assert det.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(det) > 5000
    summary = json.loads(run.out)
    assert set(summary["summary"]) == set(report["reports"])


# --- the packaged calibration on real genuine and impostor pairs ------------------------------


@pytest.mark.shared_data
def test_packaged_calibration_on_shared_ageitgey_pairs(
    shared_data: Path, comparer: FaceComparer
) -> None:
    faces = shared_data / "faces"
    with (faces / "pairs.csv").open(newline="", encoding="utf-8") as handle:
        pairs = [r for r in csv.DictReader(handle) if r["path_a"].startswith(f"{AGEITGEY}/")]
    templates = TemplateCache(comparer, faces)

    outcomes: dict[str, Counter[str]] = {"1": Counter(), "0": Counter()}
    for row in pairs:
        a, b = templates.get(row["path_a"]), templates.get(row["path_b"])
        if isinstance(a, FaceproofError) or isinstance(b, FaceproofError):
            outcomes[row["same"]]["error"] += 1
            continue
        match = comparer.compare_templates(a, b).match
        outcomes[row["same"]]["match" if match else "no match"] += 1

    n_genuine = sum(outcomes["1"].values())
    assert n_genuine == 74  # faces/README.md: 74 genuine pairs in this set
    assert outcomes["1"]["match"] >= 0.95 * n_genuine, outcomes
    # 74 impostor pairs at a 1e-4 target: a single false match would be a red flag.
    assert sum(outcomes["0"].values()) == 74
    assert outcomes["0"]["match"] == 0, outcomes
