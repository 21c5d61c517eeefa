"""`faceproof eval pad`: ISO/IEC 30107-3 metric maths on hand-made scores, the command end to end
on generated clips, and (marked `shared_data`) on ../shared/data/pad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from faceproof.evaluation.pad_eval import (
    BONA_FIDE,
    Presentation,
    evaluate,
    plot_pad_det,
    threshold_at_apcer,
    threshold_at_bpcer,
)

if TYPE_CHECKING:
    from conftest import CliRunner

PAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "pad"


def _p(species: str, score: float | None, source: str = "hand") -> Presentation:
    return Presentation(
        species, score, source, f"{species}:{score}", "x" if score is None else None
    )


# Ten bona fide scores 0.1 .. 1.0 (one real-source), two species of attacks, one non-response.
BONA = [0.1 * k for k in range(1, 11)]
PRINTS = [0.05, 0.2, 0.45, 0.6]  # at t = 0.5: 1 of 4 accepted
SCREENS = [0.01, 0.02, 0.35, 0.55, 0.9]  # at t = 0.5: 2 of 5 accepted


def _hand_made() -> list[Presentation]:
    items = [_p(BONA_FIDE, s, "real" if i == 0 else "rendered") for i, s in enumerate(BONA)]
    items += [_p("print", s) for s in PRINTS] + [_p("screen", s) for s in SCREENS]
    items.append(_p("screen", None))  # the engine could not process this attack
    items.append(_p(BONA_FIDE, None))  # nor this bona fide clip
    return items


def test_operating_point_apcer_per_species_and_max() -> None:
    report = evaluate(_hand_made(), operating_threshold=0.5)
    op = report["operating_point"]
    assert op["apcer_per_species"]["print"]["apcer"] == pytest.approx(1 / 4)
    assert op["apcer_per_species"]["screen"]["apcer"] == pytest.approx(2 / 5)
    assert op["apcer"] == pytest.approx(2 / 5)  # the worst species, not the pooled 3/9
    assert op["apcer_worst_species"] == ["screen"]
    # Bona fide 0.1..0.4 (and 0.5 up to rounding: 5 * 0.1 = 0.5 exactly) -> 4 rejected of 10.
    rejected = sum(s < 0.5 for s in BONA)
    assert op["bpcer"] == pytest.approx(rejected / 10)
    assert op["bpcer_by_source"]["real"] == {"bpcer": 1.0, "rejected": 1, "n": 1}
    assert op["bpcer_by_source"]["rendered"]["bpcer"] == pytest.approx((rejected - 1) / 9)
    assert op["bpcer_with_non_response"] == pytest.approx((rejected + 1) / 11)
    assert report["deprecated"]["acer"] == pytest.approx((2 / 5 + rejected / 10) / 2)


def test_non_response_is_counted_not_dropped() -> None:
    report = evaluate(_hand_made())
    assert report["counts"]["screen"] == {
        "presented": 6,
        "scored": 5,
        "non_response": 1,
        "non_response_rate": pytest.approx(1 / 6),
    }
    assert report["apnrr_per_species"] == {"print": 0.0, "screen": pytest.approx(1 / 6)}
    assert report["bpnrr"] == pytest.approx(1 / 11)
    # A species that only failed to acquire has no APCER, but is still listed.
    only_failed = evaluate([_p(BONA_FIDE, 0.9), _p("mask", None), _p("print", 0.1)])
    assert only_failed["counts"]["mask"]["non_response"] == 1
    assert only_failed["operating_point"]["apcer_per_species"]["mask"]["apcer"] is None
    assert only_failed["operating_point"]["apcer"] == 0.0


def test_threshold_at_apcer_is_the_max_over_species() -> None:
    attacks = {"print": np.asarray(PRINTS), "screen": np.asarray(SCREENS)}
    # 25 %: print may keep 1 of 4 accepted (t just above 0.45), screen 1 of 5 (above 0.55).
    t = threshold_at_apcer(attacks, 0.25)
    assert t == np.nextafter(0.55, np.inf)
    assert np.mean(np.asarray(SCREENS) >= t) <= 0.25
    assert np.mean(np.asarray(PRINTS) >= t) <= 0.25
    # 1 %: no accepted attack at all -> just above the highest attack score.
    assert threshold_at_apcer(attacks, 0.01) == np.nextafter(0.9, np.inf)
    report = evaluate(_hand_made(), apcer_targets=(0.01,))
    at1 = report["bpcer_at_apcer"]["1e-2"]
    assert at1["apcer"] == 0.0
    assert at1["bpcer"] == pytest.approx(sum(s < at1["threshold"] for s in BONA) / 10)
    assert at1["low_confidence"] is True  # 4 prints cannot support 1 %


def test_threshold_at_bpcer_is_the_largest_that_meets_the_target() -> None:
    bona = np.asarray(BONA)
    # 20 % of 10 allows 2 rejections: t = the 3rd smallest score, accepted (ties accepted).
    t = threshold_at_bpcer(bona, 0.2)
    assert t == bona[2]
    assert np.mean(bona < t) <= 0.2
    assert np.mean(bona < np.nextafter(t, np.inf)) > 0.2  # one float higher breaks the target
    assert threshold_at_bpcer(bona, 0.05) == bona.min()  # 0.5 rejections: none allowed
    assert threshold_at_bpcer(bona, 1.0) > bona.max()


def test_calibrated_threshold_and_its_apcer() -> None:
    report = evaluate(_hand_made(), bpcer_target=0.2)
    cal = report["calibrated"]
    assert cal["threshold"] == BONA[2]
    assert cal["bpcer"] == pytest.approx(0.2)
    assert cal["bpcer"] <= cal["bpcer_target"]
    # At t = 0.3: prints 0.45, 0.6 accepted (2/4); screens 0.35, 0.55, 0.9 (3/5).
    assert cal["apcer_per_species"]["print"]["apcer"] == pytest.approx(2 / 4)
    assert cal["apcer_per_species"]["screen"]["apcer"] == pytest.approx(3 / 5)
    assert cal["apcer"] == pytest.approx(3 / 5)
    assert cal["provenance"]["attack_scores_used"] is False
    assert cal["low_confidence"] is True  # 10 bona fide < 3 / 0.2
    assert set(report["apcer_at_bpcer"]) == {"1e-2", "5e-2"}


def test_targets_are_validated_and_empty_sides_are_none() -> None:
    with pytest.raises(ValueError, match="BPCER target"):
        evaluate(_hand_made(), bpcer_target=1.5)
    only_bona = evaluate([_p(BONA_FIDE, 0.7)])
    assert only_bona["operating_point"]["apcer"] is None
    assert only_bona["bpcer_at_apcer"] == {}
    assert only_bona["deprecated"]["acer"] is None


def test_det_plot_one_curve_per_species(tmp_path: Path) -> None:
    out = plot_pad_det({"hand": _hand_made()}, tmp_path / "det.png")
    assert out is not None
    assert out.read_bytes().startswith(b"\x89PNG")
    assert plot_pad_det({"hand": [_p(BONA_FIDE, 0.7)]}, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


# --- the command ---------------------------------------------------------------------------


def _consistent(ev: dict[str, Any]) -> None:
    """Every rate in an evaluation agrees with the counts and the per-presentation scores."""
    for point in [ev["operating_point"], ev["calibrated"], *ev["bpcer_at_apcer"].values()]:
        for sp, v in point["apcer_per_species"].items():
            assert v["n"] == ev["counts"][sp]["scored"]
            if v["n"]:
                assert v["apcer"] == pytest.approx(v["accepted"] / v["n"])
        rates = [v["apcer"] for v in point["apcer_per_species"].values() if v["apcer"] is not None]
        assert point["apcer"] == max(rates)
        n_bona = ev["counts"][BONA_FIDE]["scored"]
        assert point["bpcer"] == pytest.approx(point["bpcer_rejected"] / n_bona)


def test_eval_pad_on_generated_clips(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "pad"
    result = cli("eval", "pad", "--synthetic", "2", "--clip-seconds", "1.5", "--out", out, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)["summary"]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert (out / "det.png").read_bytes().startswith(b"\x89PNG")
    assert set(report["evaluations"]) == {"clips"}  # no --data: no stills
    ev = report["evaluations"]["clips"]
    species = {
        "print_still", "print_tilt", "print_sway", "print_bent",
        "screen_still", "screen_tilt", "screen_sway", "replay",
    }  # fmt: skip
    assert set(ev["apnrr_per_species"]) == species
    for sp in species:
        assert ev["counts"][sp]["presented"] == 2
    assert ev["counts"][BONA_FIDE]["presented"] == 6  # 3 motions x 2 seeds
    # The report's rates follow from its own per-presentation scores.
    items = report["presentations"]["clips"]
    assert len(items) == 6 + 2 * len(species)
    op = ev["operating_point"]
    for sp in species:
        scores = [p["score"] for p in items if p["species"] == sp and p["score"] is not None]
        accepted = sum(s >= 0.5 for s in scores)
        assert op["apcer_per_species"][sp]["accepted"] == accepted
        assert summary["clips"]["apcer_per_species"][sp] == op["apcer_per_species"][sp]["apcer"]
    _consistent(ev)
    cal = ev["calibrated"]
    assert cal["bpcer"] <= 0.05
    assert cal["bpcer_target"] == 0.05
    assert report["data"]["synthetic"]["seeds_per_kind"] == 2
    assert {m["id"] for m in report["models"]} >= {"mediapipe-face-landmark"}
    assert "eval pad" in report["command"]


def test_eval_pad_rejects_a_bad_target(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("eval", "pad", "--synthetic", "1", "--bpcer-target", "2", "--out", tmp_path)
    assert result.code == 2
    assert "bpcer-target" in result.err


def test_eval_pad_missing_data_folder_is_skipped_with_a_message(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = cli("eval", "pad", "--synthetic", "0", "--data", tmp_path / "nope", "--out", tmp_path)
    assert result.code == 2  # nothing left to evaluate
    assert "absent" in result.err
    assert "nothing to evaluate" in result.err


@pytest.mark.shared_data
def test_eval_pad_on_shared_data(cli: CliRunner, tmp_path: Path) -> None:
    """The shared stills (set A resized, minivision with EXIF applied) and the live clips: the
    numbers are reported by docs/liveness.md, here only their consistency is asserted."""
    if not (PAD / "labels.csv").is_file():
        pytest.skip(f"{PAD} is absent (the evaluation-only shared PAD data is not installed)")
    result = cli("eval", "pad", "--synthetic", "0", "--data", PAD, "--out", tmp_path, "--json")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    stills = report["evaluations"]["stills_passive_cues"]
    assert set(stills["apnrr_per_species"]) == {"print", "replay"}
    assert stills["counts"][BONA_FIDE]["presented"] == 162  # 161 set A live + minivision T1
    assert stills["counts"]["replay"]["presented"] == 151
    _consistent(stills)
    clips = report["evaluations"]["clips"]
    assert clips["bona_fide_sources"] == {"live_video": clips["counts"][BONA_FIDE]["scored"]}
    assert clips["counts"][BONA_FIDE]["presented"] == 8
    assert "resized" in report["data"]["shared"]["stills_note"]
