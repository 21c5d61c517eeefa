"""Presentation-attack detection (PAD) evaluation with ISO/IEC 30107-3 metrics.

Conventions (they follow :mod:`faceproof.evaluation.metrics`, bona fide in the role of genuine
and attacks in the role of impostors):

* **Score.** Higher = more live. For clips it is ``LivenessResult.score`` (the weakest check's
  logistic score, capped at 0.49 when the engine says "not live"); for still images, which only
  the passive cues can judge, it is ``liveness.cues.decide(...).score``. The two are different
  systems and are never pooled: each gets its own evaluation.
* **Decision.** A presentation is classified *bona fide* when ``score >= threshold`` (ties are
  accepted). The engine's own operating point is ``threshold = 0.5``.
* **APCER_PAIS(t)** (ISO/IEC 30107-3 §13) = share of one PAI species' attack presentations with
  ``score >= t``; **APCER(t)** = the maximum over species (the worst species decides).
  **BPCER(t)** = share of bona fide presentations with ``score < t``.
* **Non-response.** A presentation the engine cannot process (no face, a corrupt clip: an
  ``InputError``) has no score. It is counted per species (APNRR, BPNRR) and reported, never
  dropped; the rates above are over the presentations that got a score. ``bpcer_with_non_response``
  also counts a bona fide non-response as a rejection (the applicant has to try again).
* **BPCER @ APCER = x.** The threshold is the smallest ``t`` with ``APCER_PAIS(t) <= x`` for
  every species, i.e. the maximum over species of ``metrics.threshold_at_fmr(species, x)``.
* **APCER @ BPCER = x** and the **calibrated threshold** for ``--bpcer-target x``: the largest
  ``t`` with ``BPCER(t) <= x`` (it rejects as many attacks as that BPCER allows), set on the bona
  fide scores only.
* **Rule of 3.** A target rate ``x`` is flagged ``low_confidence`` when the presentations that set
  the threshold number fewer than ``3 / x``.
* **ACER** = (APCER + BPCER) / 2 is deprecated by ISO/IEC 30107-3:2023; it is reported under
  ``deprecated`` only, never as the headline figure.

The metric functions work on numbers only. The data loaders (generated clips, the shared
``pad`` folder) import the liveness engine lazily.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from faceproof.evaluation.metrics import det_curve, format_fmr, is_low_confidence, threshold_at_fmr

if TYPE_CHECKING:
    from faceproof.faces.detector import FaceDetector
    from faceproof.liveness.cues import CueThresholds, FrameCues
    from faceproof.liveness.engine import LivenessEngine
    from faceproof.liveness.synthetic import SceneKit

__all__ = [
    "APCER_TARGETS",
    "BONA_FIDE",
    "BPCER_TARGETS",
    "CROP_SIDE",
    "OPERATING_THRESHOLD",
    "Presentation",
    "crop_cues",
    "evaluate",
    "image_cues",
    "plot_pad_det",
    "run_pad_evaluation",
    "shared_clip_presentations",
    "shared_still_presentations",
    "synthetic_presentations",
    "threshold_at_apcer",
    "threshold_at_bpcer",
]

FloatArray = npt.NDArray[np.float64]

BONA_FIDE = "bona_fide"
OPERATING_THRESHOLD = 0.5  # the engine's: live <=> every check passed <=> score >= 0.5
APCER_TARGETS: tuple[float, ...] = (0.01, 0.05, 0.10)
BPCER_TARGETS: tuple[float, ...] = (0.01, 0.05)
CROP_SIDE = 224  # set A crops are all resized to this square before scoring (size confound)
TIGHT_CROP_SETS = frozenset({"set_A_pyimagesearch_2019"})  # face crops: no detection needed

Task = Callable[[], "Presentation"]


@dataclass(frozen=True, slots=True)
class Presentation:
    """One scored presentation: bona fide (species ``BONA_FIDE``) or an attack of a PAI species.

    ``score`` is None when the engine could not process it (non-response); ``error`` then holds
    the reason code. ``source`` says where it came from (``synthetic``, ``live_video``, a set).
    """

    species: str
    score: float | None
    source: str
    item: str
    error: str | None = None
    reasons: tuple[str, ...] = ()

    @property
    def bona_fide(self) -> bool:
        return self.species == BONA_FIDE

    def to_dict(self) -> dict[str, Any]:
        return {
            "species": self.species,
            "source": self.source,
            "item": self.item,
            "score": None if self.score is None else round(self.score, 6),
            "reasons": list(self.reasons),
            **({"error": self.error} if self.error else {}),
        }


# --------------------------------------------------------------------------- metric maths


def _rate(count: int, n: int) -> float | None:
    return count / n if n else None


def _accepted(scores: FloatArray, t: float) -> int:
    return int(np.count_nonzero(scores >= t))


def threshold_at_apcer(attacks: Mapping[str, npt.ArrayLike], target: float) -> float:
    """Smallest threshold with APCER_PAIS <= target for every species that has scores."""
    per = [threshold_at_fmr(s, target) for s in attacks.values() if np.asarray(s).size]
    if not per:
        raise ValueError("no scored attack presentation")
    return max(per)


def threshold_at_bpcer(bona_fide: npt.ArrayLike, target: float) -> float:
    """Largest threshold with BPCER = mean(bona_fide < t) <= target.

    Mirror of ``threshold_at_fmr`` on the negated scores: that gives the smallest ``u`` with
    ``count(-s >= u) <= k``, i.e. the float just below the (k+1)-th smallest bona fide score
    ``b[k]``; stepping back up one float returns ``b[k]`` itself (ties at ``t`` are accepted,
    so ``count(s < b[k]) <= k``). When the target allows every rejection (k = n) the result is
    just above the highest score.
    """
    negated = -np.asarray(bona_fide, dtype=np.float64)
    return float(np.nextafter(-threshold_at_fmr(negated, target), np.inf))


def _operating_point(
    bf: FloatArray,
    bf_sources: Sequence[str],
    attacks: Mapping[str, FloatArray],
    non_response: Mapping[str, int],
    t: float,
) -> dict[str, Any]:
    per_species = {
        sp: {"apcer": _rate(_accepted(s, t), s.size), "accepted": _accepted(s, t), "n": s.size}
        for sp, s in attacks.items()
    }
    rates = [v["apcer"] for v in per_species.values() if v["apcer"] is not None]
    apcer = max(rates) if rates else None
    worst = [sp for sp, v in per_species.items() if rates and v["apcer"] == apcer]
    rejected = int(np.count_nonzero(bf < t))
    by_source: dict[str, dict[str, Any]] = {}
    for src in sorted(set(bf_sources)):
        mine = bf[[i for i, s in enumerate(bf_sources) if s == src]]
        rej = int(np.count_nonzero(mine < t))
        by_source[src] = {"bpcer": _rate(rej, mine.size), "rejected": rej, "n": mine.size}
    nr_bf = non_response.get(BONA_FIDE, 0)
    return {
        "threshold": t,
        "apcer": apcer,
        "apcer_worst_species": worst,
        "apcer_per_species": per_species,
        "bpcer": _rate(rejected, bf.size),
        "bpcer_rejected": rejected,
        "bpcer_by_source": by_source,
        "bpcer_with_non_response": _rate(rejected + nr_bf, bf.size + nr_bf),
    }


def evaluate(
    presentations: Iterable[Presentation],
    *,
    bpcer_target: float = 0.05,
    apcer_targets: Sequence[float] = APCER_TARGETS,
    bpcer_targets: Sequence[float] = BPCER_TARGETS,
    operating_threshold: float = OPERATING_THRESHOLD,
) -> dict[str, Any]:
    """Every ISO/IEC 30107-3 figure for one set of presentations (see the module docstring)."""
    if not 0.0 <= bpcer_target <= 1.0:
        raise ValueError(f"BPCER target must be in [0, 1], got {bpcer_target!r}")
    items = list(presentations)
    scored = [p for p in items if p.score is not None]
    bf_items = [p for p in scored if p.bona_fide]
    bf = np.asarray([p.score for p in bf_items], dtype=np.float64)
    bf_sources = [p.source for p in bf_items]
    species = sorted({p.species for p in items if not p.bona_fide})
    attacks = {
        sp: np.asarray([p.score for p in scored if p.species == sp], dtype=np.float64)
        for sp in species
    }
    non_response = {
        sp: sum(p.score is None and p.species == sp for p in items) for sp in [BONA_FIDE, *species]
    }
    counts = {
        sp: {
            "presented": sum(p.species == sp for p in items),
            "scored": (bf if sp == BONA_FIDE else attacks[sp]).size,
            "non_response": non_response[sp],
            "non_response_rate": _rate(non_response[sp], sum(p.species == sp for p in items)),
        }
        for sp in [BONA_FIDE, *species]
    }
    report: dict[str, Any] = {
        "counts": counts,
        "bona_fide_sources": {s: bf_sources.count(s) for s in sorted(set(bf_sources))},
        "bpnrr": counts[BONA_FIDE]["non_response_rate"],
        "apnrr_per_species": {sp: counts[sp]["non_response_rate"] for sp in species},
    }

    def at(t: float) -> dict[str, Any]:
        return _operating_point(bf, bf_sources, attacks, non_response, t)

    op = at(operating_threshold)
    op["provenance"] = "the engine's decision threshold (live <=> score >= 0.5)"
    report["operating_point"] = op
    report["deprecated"] = {
        "acer": None
        if op["apcer"] is None or op["bpcer"] is None
        else (op["apcer"] + op["bpcer"]) / 2,
        "note": "ACER = (APCER + BPCER) / 2 at the operating point; deprecated by ISO/IEC "
        "30107-3:2023, not a headline figure",
    }
    has_attacks = any(s.size for s in attacks.values())
    n_min_species = min((s.size for s in attacks.values() if s.size), default=0)
    report["bpcer_at_apcer"] = {}
    if has_attacks and bf.size:
        for x in apcer_targets:
            p = at(threshold_at_apcer(attacks, x))
            p["low_confidence"] = is_low_confidence(n_min_species, x)
            report["bpcer_at_apcer"][format_fmr(x)] = p
    report["apcer_at_bpcer"] = {}
    report["calibrated"] = None
    if bf.size:
        for x in bpcer_targets:
            p = at(threshold_at_bpcer(bf, x))
            p["low_confidence"] = is_low_confidence(bf.size, x)
            report["apcer_at_bpcer"][format_fmr(x)] = p
        cal = at(threshold_at_bpcer(bf, bpcer_target))
        cal["bpcer_target"] = bpcer_target
        cal["low_confidence"] = is_low_confidence(bf.size, bpcer_target)
        cal["provenance"] = {
            "rule": "largest threshold t with BPCER(t) = mean(bona fide score < t) <= target",
            "set_on": f"{bf.size} scored bona fide presentations",
            "bona_fide_sources": report["bona_fide_sources"],
            "attack_scores_used": False,
        }
        report["calibrated"] = cal
    return report


# --------------------------------------------------------------------------- DET plot

_FLOOR = 1e-3  # log axes cannot show 0: rates of 0 are drawn on this floor


def _det_panels(
    evaluations: Mapping[str, Sequence[Presentation]],
) -> dict[str, dict[str, tuple[FloatArray, FloatArray]]]:
    panels: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
    for name, items in evaluations.items():
        bf = [p.score for p in items if p.bona_fide and p.score is not None]
        curves: dict[str, tuple[FloatArray, FloatArray]] = {}
        for sp in sorted({p.species for p in items if not p.bona_fide}):
            att = [p.score for p in items if p.species == sp and p.score is not None]
            if bf and att:
                apcer, bpcer, _ = det_curve(bf, att)
                curves[sp] = (apcer, bpcer)
        if curves:
            panels[name] = curves
    return panels


def plot_pad_det(
    evaluations: Mapping[str, Sequence[Presentation]], path: str | Path
) -> Path | None:
    """DET plot: BPCER against APCER on log axes, one curve per PAI species, one panel per
    evaluation; None (nothing written) when no evaluation has both bona fide and attacks."""
    panels = _det_panels(evaluations)
    if not panels:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0 * len(panels), 5.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    for k, (name, curves) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for sp, (apcer, bpcer) in curves.items():
            ax.step(np.maximum(apcer, _FLOOR), np.maximum(bpcer, _FLOOR), where="post", label=sp)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(_FLOOR * 0.8, 1.05)
        ax.set_ylim(_FLOOR * 0.8, 1.05)
        ax.set_xlabel(f"APCER (per PAI species; 0 drawn at {_FLOOR:g})")
        ax.set_ylabel(f"BPCER (0 drawn at {_FLOOR:g})")
        ax.set_title(f"PAD DET: {name}")
        ax.grid(True, which="both", linewidth=0.3, color="0.85")
        ax.legend(loc="upper right", fontsize=7)
    out = Path(path)
    fig.savefig(out, format="png")
    return out


# --------------------------------------------------------------------------- data


def _clip_task(
    engine: LivenessEngine, make: Callable[[], Any], species: str, source: str, item: str
) -> Task:
    def run() -> Presentation:
        from faceproof.errors import InputError

        try:
            result = engine.analyze(make())
        except InputError as exc:
            return Presentation(species, None, source, item, exc.code.value, (exc.code.value,))
        reasons = tuple(c.value for c in result.reasons)
        return Presentation(species, result.score, source, item, None, reasons)

    return run


def synthetic_presentations(
    engine: LivenessEngine, kit: SceneKit, seeds: int, *, seconds: float = 3.0
) -> list[Task]:
    """Generated clips (`liveness.synthetic`): bona fide head turns, nods and a two-turn
    challenge motion; every attack kind and a video replay of a head turn; `seeds` each."""
    from faceproof.liveness.synthetic import (
        ATTACK_KINDS,
        attack_clip,
        bona_fide_clip,
        challenge_motion,
        replay_clip,
    )

    windows = ((0.1 * seconds, 0.55 * seconds), (0.55 * seconds, seconds))
    two_turns = challenge_motion(("turn_right", "turn_left"), windows)
    tasks: list[Task] = []
    for s in range(seeds):
        seed = 500 + s
        for kind in ("turns", "nod_and_turn", "challenge"):
            motion = two_turns if kind == "challenge" else None

            def bona(kind: str = kind, seed: int = seed, motion: Any = motion) -> Any:
                return bona_fide_clip(kit, kind, seconds=seconds, motion=motion, seed=seed)

            tasks.append(_clip_task(engine, bona, BONA_FIDE, "synthetic", f"{kind}/{seed}"))
        for kind in ATTACK_KINDS:

            def attack(kind: str = kind, seed: int = seed) -> Any:
                return attack_clip(kit, kind, seed=seed, seconds=seconds)

            tasks.append(_clip_task(engine, attack, kind, "synthetic", f"{kind}/{seed}"))

        def replay(seed: int = seed) -> Any:
            kind = ("turns", "nod_and_turn")[seed % 2]
            shown = bona_fide_clip(kit, kind, seconds=seconds, seed=seed)
            return replay_clip(kit, shown, seed=seed)

        tasks.append(_clip_task(engine, replay, "replay", "synthetic", f"replay/{seed}"))
    return tasks


def _labels(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _species(label: str) -> str:
    return BONA_FIDE if label == "live" else label


def shared_clip_presentations(engine: LivenessEngine, data: Path) -> list[Task]:
    """`live_video/` clips of the shared `pad` folder (all bona fide, per its labels.csv)."""
    from faceproof.liveness.clip import load_clip

    folder = data / "live_video"
    if not (folder / "labels.csv").is_file():
        return []
    tasks: list[Task] = []
    for row in _labels(folder / "labels.csv"):

        def make(path: Path = folder / row["path"]) -> Any:
            return load_clip(path)

        tasks.append(_clip_task(engine, make, _species(row["label"]), "live_video", row["path"]))
    return tasks


def crop_cues(rgb: npt.NDArray[np.uint8], side: int = CROP_SIDE) -> FrameCues:
    """Passive cues on a tight face crop, first resized to side x side (removes the size
    difference between live and replay crops that set A's README warns about)."""
    import cv2

    from faceproof.liveness.cues import frame_cues

    square = cv2.resize(np.asarray(rgb), (side, side), interpolation=cv2.INTER_AREA)
    return frame_cues(np.ascontiguousarray(square, np.uint8), (0.0, 0.0, float(side), float(side)))


def image_cues(detector: FaceDetector, rgb: npt.NDArray[np.uint8]) -> FrameCues | None:
    """Passive cues on a whole photo: shrunk to a 640 px long side (as `load_clip` shrinks
    frames), the largest YuNet face as the face box; None when no face is found."""
    import cv2

    from faceproof.liveness.cues import frame_cues

    h, w = rgb.shape[:2]
    scale = min(1.0, 640 / max(h, w))
    if scale < 1.0:
        size = (round(w * scale), round(h * scale))
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
    faces = detector.detect(rgb)
    if not faces:
        return None
    b = max(faces, key=lambda f: f.box.width).box
    return frame_cues(np.ascontiguousarray(rgb), (b.x, b.y, b.width, b.height))


def shared_still_presentations(
    detector: FaceDetector, thresholds: CueThresholds, data: Path
) -> list[Task]:
    """Still images of the shared `pad` folder (labels.csv; `other` rows skipped), judged by
    the passive cues only. Set A crops are resized to CROP_SIDE² first; other photos are read
    through `capture.load_image`, which applies the EXIF orientation (minivision: 6)."""
    from faceproof.capture import load_image
    from faceproof.liveness.cues import decide

    if not (data / "labels.csv").is_file():
        return []

    def task(row: dict[str, str]) -> Task:
        def run() -> Presentation:
            species, source = _species(row["label"]), row["set"]
            pixels = load_image(data / row["path"]).pixels
            tight = source in TIGHT_CROP_SETS
            cues = crop_cues(pixels) if tight else image_cues(detector, pixels)
            if cues is None:
                return Presentation(
                    species, None, source, row["path"], "face_not_found", ("face_not_found",)
                )
            verdict = decide(cues, thresholds)
            reasons = tuple(verdict.why) or ("no_attack_cue",)
            return Presentation(species, verdict.score, source, row["path"], None, reasons)

        return run

    return [
        task(r) for r in _labels(data / "labels.csv") if r["label"] in {"live", "print", "replay"}
    ]


def _engine_info(engine: LivenessEngine) -> dict[str, Any]:
    import dataclasses
    import importlib.metadata

    from faceproof.models.registry import get_spec

    models: list[dict[str, Any]] = []
    for model in (engine.detector, engine.landmarker, engine.embedder):
        model_id = str(getattr(model, "model_id", type(model).__name__))
        try:
            spec = get_spec(model_id)
            models.append({"id": model_id, "version": spec.version, "sha256": spec.sha256})
        except Exception:  # a test double or an operator model: name it, nothing more
            models.append({"id": model_id})
    pad = engine.pad_model
    if pad is not None:  # the operator's PAD model (liveness.pad_model)
        sha256 = str(getattr(pad, "sha256", ""))
        models.append({"id": pad.model_id, "sha256": sha256, "threshold": pad.threshold})
    try:
        version = importlib.metadata.version("faceproof")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - always installed
        version = "unknown"
    return {
        "faceproof_version": version,
        "engine": "faceproof.liveness.LivenessEngine",
        "models": models,
        "config": dataclasses.asdict(engine.config),
    }


def run_pad_evaluation(
    *,
    synthetic: int,
    data: Path | None,
    bpcer_target: float,
    seconds: float = 3.0,
    progress: Callable[[list[Task]], Iterable[Task]] = lambda tasks: tasks,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[dict[str, Any], dict[str, list[Presentation]]]:
    """Score every presentation and evaluate; returns (report, presentations by evaluation)."""
    from faceproof.liveness.engine import LivenessEngine
    from faceproof.liveness.pad_model import pad_model_from_env
    from faceproof.liveness.synthetic import SceneKit

    engine = LivenessEngine(pad_model=pad_model_from_env())  # FACEPROOF_PAD_MODEL_*, if set
    clip_tasks: list[Task] = []
    still_tasks: list[Task] = []
    used: dict[str, Any] = {"synthetic": None, "shared": None}
    if synthetic > 0:
        clip_tasks += synthetic_presentations(
            engine, SceneKit.build(engine.landmarker), synthetic, seconds=seconds
        )
        used["synthetic"] = {
            "seeds_per_kind": synthetic,
            "first_seed": 500,
            "clip_seconds": seconds,
            "fps": 15.0,
            "size": "640x480",
            "generator": "faceproof.liveness.synthetic (one portrait: scikit-image astronaut)",
        }
    if data is not None:
        if data.is_dir():
            clip_tasks += shared_clip_presentations(engine, data)
            still_tasks = shared_still_presentations(engine.detector, engine.config.cues, data)
            used["shared"] = {
                "path": str(data),
                "live_video": (data / "live_video" / "labels.csv").is_file(),
                "stills": (data / "labels.csv").is_file(),
                "stills_note": f"set A crops resized to {CROP_SIDE}x{CROP_SIDE} before scoring "
                "(size confound: live crops 364-513 px wide, replay 126-175 px); other photos "
                "with their EXIF orientation applied; passive cues only",
            }
        else:
            say(f"{data} is absent: shared PAD data skipped, synthetic clips only")
            used["shared"] = {"path": str(data), "absent": True}
    results = [task() for task in progress([*clip_tasks, *still_tasks])]
    by_eval = {
        "clips": results[: len(clip_tasks)],
        "stills_passive_cues": results[len(clip_tasks) :],
    }
    by_eval = {k: v for k, v in by_eval.items() if v}
    scores = {
        "clips": "LivenessResult.score: the weakest check's 0..1 score, <= 0.49 when not live",
        "stills_passive_cues": "liveness.cues.decide(...).score on one image (passive cues only)",
    }
    report: dict[str, Any] = {
        "standard": "ISO/IEC 30107-3 (APCER per PAI species and its maximum, BPCER, non-response)",
        "conventions": "bona fide when score >= threshold; see faceproof.evaluation.pad_eval",
        "bpcer_target": bpcer_target,
        **_engine_info(engine),
        "data": used,
        "evaluations": {
            name: {"score": scores[name], **evaluate(items, bpcer_target=bpcer_target)}
            for name, items in by_eval.items()
        },
        "presentations": {name: [p.to_dict() for p in items] for name, items in by_eval.items()},
    }
    return report, by_eval
