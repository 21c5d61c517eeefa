"""faceproof against the `face_recognition` package: speed and accuracy on the same pairs.

Both systems see the same decoded pixels (faceproof's own decoder: EXIF orientation applied,
8-bit RGB), so decoding does not bias the comparison; it is timed once per repeat and reported
on its own. Per image and system the timed work is detect + embed:

* faceproof: `FaceComparer.template` (YuNet + quality checks + SFace), plus
  `FaceComparer.extend` (dlib ResNet) for the images the cascade asked a second opinion on.
* face_recognition: `face_locations` (HOG, upsample 1), the largest face, `face_encodings`
  (its defaults: 5-point alignment, 1 jitter) -> 128-d; score = -euclidean distance,
  match when the distance is <= 0.6 (the library's conventional tolerance).

Each distinct image is processed once per system (untimed warm pass, whose results give the
pair scores), then timed `--repeats` times with the two systems interleaved on the same image
and their order alternated, on one pinned core with one thread each. Embeddings and pixels stay
in memory; nothing but the markdown report (and optional JSON on stdout) is written.

Run (needs ../shared/data and the `bench` dependency group; takes several minutes):

    uv run --group bench python benchmarks/compare_peers.py --repeats 3
"""

from __future__ import annotations

import os

# One thread per library, set before numpy, onnxruntime or dlib is imported.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import csv
import gc
import importlib.metadata
import json
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_PAIRS = SHARED_DATA / "faces" / "pairs.csv"
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
FMR_TARGETS = (1e-2, 1e-3)
PEER_TOLERANCE = 0.6  # face_recognition.compare_faces default: match when distance <= 0.6

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- data


@dataclass
class Pair:
    a: str
    b: str
    same: bool
    subset: str


@dataclass
class ImageRecord:
    rel: str
    decoded: Any = None  # faceproof DecodedImage (None when faceproof's decoder refused it)
    pixels: npt.NDArray[np.uint8] | None = None  # what both systems are given
    template: Any = None  # faceproof FaceTemplate
    product_fte: str | None = None
    encoding: FloatArray | None = None
    peer_fte: str | None = None
    needs_extension: bool = False
    decode_ms: list[float] = field(default_factory=list)
    template_ms: list[float] = field(default_factory=list)
    extension_ms: list[float] = field(default_factory=list)
    peer_ms: list[float] = field(default_factory=list)


def read_pairs(path: Path) -> list[Pair]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Pair(r["path_a"], r["path_b"], r["same"].strip() == "1", r["path_a"].split("/")[0])
        for r in rows
    ]


def distinct_images(pairs: list[Pair]) -> list[str]:
    seen: dict[str, None] = {}
    for p in pairs:
        seen.setdefault(p.a)
        seen.setdefault(p.b)
    return list(seen)


# --------------------------------------------------------------------------- the two systems


def import_peer() -> Any:
    """face_recognition, quietly: face_recognition_models warns that pkg_resources is deprecated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition
    return face_recognition


def peer_embed(fr: Any, rgb: npt.NDArray[np.uint8], landmarks: str) -> FloatArray | None:
    """face_recognition's usual pipeline: HOG boxes, the largest face, its 128-d encoding."""
    boxes = fr.face_locations(rgb, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        return None
    # css order: (top, right, bottom, left)
    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    return np.asarray(fr.face_encodings(rgb, [box], num_jitters=1, model=landmarks)[0])


def make_comparer() -> Any:
    """FaceComparer that records which images the cascade extended with the second opinion.

    `extend` adds the dlib embedding to a template in place (once per image); this subclass
    also remembers which templates needed it, so step 3 times `extend` only for those images.
    Decisions are identical to the plain FaceComparer.
    """
    from faceproof.comparison import FaceComparer

    class CachingComparer(FaceComparer):
        def __init__(self) -> None:
            super().__init__()
            self.extended: dict[int, Any] = {}

        def extend(self, template: Any) -> Any:
            key = id(template)  # templates stay alive in the image records for the whole run
            hit = self.extended.get(key)
            if hit is None:
                hit = self.extended[key] = super().extend(template)
            return hit

    return CachingComparer()


def product_template(comparer: Any, decoded: Any) -> tuple[Any, str | None]:
    from faceproof.errors import InputError

    try:
        return comparer.template(decoded), None
    except InputError as exc:
        return None, exc.code.value


def decode(path: Path) -> tuple[Any, npt.NDArray[np.uint8] | None, str | None]:
    """(faceproof DecodedImage or None, RGB pixels or None, faceproof's ImageError code)."""
    from faceproof.capture import load_image
    from faceproof.errors import ImageError

    try:
        decoded = load_image(path)
        return decoded, decoded.pixels, None
    except ImageError as exc:
        code = exc.code.value
    # faceproof refused the file; give the peer its own chance with a plain PIL decode.
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            rgb = np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(img).convert("RGB")))
        return None, rgb, code
    except Exception:
        return None, None, code


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter_ns()
    out = fn()
    return out, (time.perf_counter_ns() - t0) / 1e6


# --------------------------------------------------------------------------- metrics


def safe_report(gen: list[float], imp: list[float], **counts: int) -> Any:
    from faceproof.evaluation.metrics import verification_report

    if not gen or not imp:
        return None
    return verification_report(gen, imp, fmr_targets=FMR_TARGETS, **counts)


def operating_point(
    gen_match: list[bool], imp_match: list[bool], fte_gen: int, fte_imp: int
) -> dict[str, Any]:
    """Observed FMR/FNMR of the system's own decisions; generalized: FTE pairs are rejections."""
    fm = sum(imp_match)
    fnm = sum(not m for m in gen_match)
    n_gen, n_imp = len(gen_match), len(imp_match)
    return {
        "false_matches": fm,
        "false_non_matches": fnm,
        "n_genuine": n_gen,
        "n_impostor": n_imp,
        "fmr": fm / n_imp if n_imp else None,
        "fnmr": fnm / n_gen if n_gen else None,
        "gfmr": fm / (n_imp + fte_imp) if n_imp + fte_imp else None,
        "gfnmr": (fnm + fte_gen) / (n_gen + fte_gen) if n_gen + fte_gen else None,
        "fte_genuine": fte_gen,
        "fte_impostor": fte_imp,
    }


def summarise(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "p90": float(np.percentile(arr, 90)), "n": arr.size}


# --------------------------------------------------------------------------- environment


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """HEAD of the repo, marked when src/ has uncommitted changes (other work in progress)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in src/" if dirty else "")


def environment(core: int) -> dict[str, Any]:
    return {
        "git": git_revision(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "pinned_core": core,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            d: version(d)
            for d in (
                "faceproof",
                "onnxruntime",
                "dlib-bin",
                "face-recognition",
                "face-recognition-models",
                "numpy",
                "opencv-python-headless",
                "pillow",
            )
        },
    }


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, console: Any) -> dict[str, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    fr = import_peer()
    import cv2

    cv2.setNumThreads(1)

    comparer = make_comparer()
    cal = comparer.calibration
    data_root = args.pairs.parent
    all_pairs = read_pairs(args.pairs)
    images = distinct_images(all_pairs)
    if args.limit:
        images = images[: args.limit]
    keep = set(images)
    pairs = [p for p in all_pairs if p.a in keep and p.b in keep]
    records = {rel: ImageRecord(rel) for rel in images}

    def progress() -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )

    # 1. Enrol: every image once per system (warm-up; these results give the pair scores).
    with progress() as bar:
        task = bar.add_task("enrol (once per system)", total=len(images))
        for i, rel in enumerate(images):
            rec = records[rel]
            rec.decoded, rec.pixels, code = decode(data_root / rel)

            def run_product(rec: ImageRecord = rec, code: str | None = code) -> None:
                if rec.decoded is None:
                    rec.product_fte = code
                else:
                    rec.template, rec.product_fte = product_template(comparer, rec.decoded)

            def run_peer(rec: ImageRecord = rec) -> None:
                if rec.pixels is None:
                    rec.peer_fte = "decode_failed"
                    return
                rec.encoding = peer_embed(fr, rec.pixels, args.peer_landmarks)
                rec.peer_fte = None if rec.encoding is not None else "no_face"

            for fn in (run_product, run_peer) if i % 2 == 0 else (run_peer, run_product):
                fn()
            bar.advance(task)

    # 2. Score every pair from the in-memory templates/encodings.
    id_to_rel = {id(r.template): rel for rel, r in records.items() if r.template is not None}
    scored: list[dict[str, Any]] = []
    with progress() as bar:
        task = bar.add_task("score pairs", total=len(pairs))
        for p in pairs:
            ra, rb = records[p.a], records[p.b]
            row: dict[str, Any] = {"pair": p, "product": None, "peer": None}
            if ra.template is not None and rb.template is not None:
                res = comparer.compare_templates(ra.template, rb.template)
                row["product"] = (res.score, res.match, res.details.path)
            if ra.encoding is not None and rb.encoding is not None:
                dist = float(np.linalg.norm(ra.encoding - rb.encoding))
                row["peer"] = (-dist, dist <= PEER_TOLERANCE, dist)
            scored.append(row)
            bar.advance(task)
    for key in comparer.extended:
        records[id_to_rel[key]].needs_extension = True

    # 3. Time detect + embed, interleaved per image, order alternating per repeat.
    from faceproof.comparison import FaceComparer
    from faceproof.errors import InputError

    def time_product(rec: ImageRecord) -> None:
        if rec.decoded is None:
            return
        t0 = time.perf_counter_ns()
        try:
            template = comparer.template(rec.decoded)
        except InputError:  # an FTE image is timed until the failure
            template = None
        rec.template_ms.append((time.perf_counter_ns() - t0) / 1e6)
        if template is not None and rec.needs_extension:
            # The base-class extend: the uncached second opinion, as a fresh comparison pays it.
            _, ms = timed(lambda: FaceComparer.extend(comparer, template))
            rec.extension_ms.append(ms)

    def time_peer(rec: ImageRecord) -> None:
        if rec.pixels is None:
            return
        _, ms = timed(lambda: peer_embed(fr, rec.pixels, args.peer_landmarks))
        rec.peer_ms.append(ms)

    from faceproof.capture import load_image

    gc.collect()
    gc.disable()
    try:
        with progress() as bar:
            task = bar.add_task(f"time x{args.repeats} (interleaved)", total=len(images))
            for i, rel in enumerate(images):
                rec = records[rel]
                for r in range(args.repeats):
                    if rec.decoded is not None:
                        _, ms = timed(lambda rel=rel: load_image(data_root / rel))
                        rec.decode_ms.append(ms)
                    if (i + r) % 2 == 0:
                        time_product(rec)
                        time_peer(rec)
                    else:
                        time_peer(rec)
                        time_product(rec)
                gc.collect()
                bar.advance(task)
    finally:
        gc.enable()

    return analyse(args, cal, images, records, scored)


def analyse(
    args: argparse.Namespace,
    cal: Any,
    images: list[str],
    records: dict[str, ImageRecord],
    scored: list[dict[str, Any]],
) -> dict[str, Any]:
    med = statistics.median

    # --- speed (per image: median over repeats; then median / p90 over images)
    decode_ms, template_ms, ext_ms, product_ms, peer_ms = [], [], [], [], []
    ratio_eff, ratio_tpl = [], []
    per_image: dict[str, tuple[float, float, float]] = {}  # rel -> (template, extend, peer) ms
    for rel in images:
        rec = records[rel]
        if rec.decode_ms:
            decode_ms.append(med(rec.decode_ms))
        if not rec.template_ms or not rec.peer_ms:
            continue
        tpl = med(rec.template_ms)
        ext = med(rec.extension_ms) if rec.extension_ms else 0.0
        peer = med(rec.peer_ms)
        template_ms.append(tpl)
        if rec.extension_ms:
            ext_ms.append(ext)
        product_ms.append(tpl + ext)
        peer_ms.append(peer)
        ratio_eff.append(peer / (tpl + ext))
        ratio_tpl.append(peer / tpl)
        per_image[rel] = (tpl, ext, peer)

    # Per subset: image sizes differ a lot between sets (ORL is 92x112), and so do the costs.
    speed_subsets: dict[str, Any] = {}
    for subset in sorted({rel.split("/")[0] for rel in per_image}):
        rels = [rel for rel in per_image if rel.split("/")[0] == subset]
        prod = [per_image[r][0] + per_image[r][1] for r in rels]
        peer_s = [per_image[r][2] for r in rels]
        sides = [max(records[r].pixels.shape[:2]) for r in rels if records[r].pixels is not None]
        speed_subsets[subset] = {
            "images": len(rels),
            "images_extended": sum(per_image[r][1] > 0 for r in rels),
            "median_long_side_px": float(np.median(sides)) if sides else None,
            "product_ms": summarise(prod),
            "peer_ms": summarise(peer_s),
            "ratio_of_medians": float(np.median(peer_s) / np.median(prod)),
        }

    # Per comparison (two fresh images): the second opinion only on the pairs that took it.
    pair_product, pair_peer = [], []
    for row in scored:
        p = row["pair"]
        if p.a not in per_image or p.b not in per_image:
            continue
        (ta, ea, qa), (tb, eb, qb) = per_image[p.a], per_image[p.b]
        fusion = row["product"] is not None and row["product"][2] == "fusion"
        pair_product.append(ta + tb + (ea + eb if fusion else 0.0))
        pair_peer.append(qa + qb)
    speed = {
        "repeats": args.repeats,
        "images_timed": len(product_ms),
        "images_extended": len(ext_ms),
        "decode_ms": summarise(decode_ms),
        "product_template_ms": summarise(template_ms),
        "product_extension_ms": summarise(ext_ms),
        "product_ms": summarise(product_ms),
        "peer_ms": summarise(peer_ms),
        "ratio_of_medians": (
            float(np.median(peer_ms) / np.median(product_ms)) if product_ms else None
        ),
        "ratio_of_medians_template_only": (
            float(np.median(peer_ms) / np.median(template_ms)) if template_ms else None
        ),
        "per_image_ratio": summarise(ratio_eff),
        "per_image_ratio_template_only": summarise(ratio_tpl),
        "product_total_s": sum(product_ms) / 1000,
        "peer_total_s": sum(peer_ms) / 1000,
        "per_comparison": {
            "pairs": len(pair_product),
            "product_mean_ms": float(np.mean(pair_product)) if pair_product else None,
            "peer_mean_ms": float(np.mean(pair_peer)) if pair_peer else None,
            "product_ms": summarise(pair_product),
            "peer_ms": summarise(pair_peer),
            "ratio_of_means": (
                float(np.mean(pair_peer) / np.mean(pair_product)) if pair_product else None
            ),
        },
        "subsets": speed_subsets,
    }

    # --- accuracy
    def accuracy(rows: list[dict[str, Any]], image_set: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_genuine": sum(r["pair"].same for r in rows),
            "n_impostor": sum(not r["pair"].same for r in rows),
        }
        both = [r for r in rows if r["product"] is not None and r["peer"] is not None]
        out["common_genuine"] = sum(r["pair"].same for r in both)
        out["common_impostor"] = sum(not r["pair"].same for r in both)
        for system, fte_attr in (("product", "product_fte"), ("peer", "peer_fte")):
            # Same enrolled pairs: plain metrics on the pairs both systems could score.
            gen = [r[system][0] for r in both if r["pair"].same]
            imp = [r[system][0] for r in both if not r["pair"].same]
            common = safe_report(gen, imp)
            # All pairs, this system alone: FTE genuine pairs count as rejections.
            own = [r for r in rows if r[system] is not None]
            fte_rows = [r for r in rows if r[system] is None]
            fte_gen = sum(r["pair"].same for r in fte_rows)
            fte_imp = len(fte_rows) - fte_gen
            n_fte_images = sum(getattr(records[i], fte_attr) is not None for i in image_set)
            allp = safe_report(
                [r[system][0] for r in own if r["pair"].same],
                [r[system][0] for r in own if not r["pair"].same],
                n_fte_genuine=fte_gen,
                n_fte_impostor=fte_imp,
                n_images=len(image_set),
                n_fte_images=n_fte_images,
            )
            out[system] = {
                "same_enrolled": common.to_dict() if common else None,
                "all_pairs": allp.to_dict() if allp else None,
                "fte_images": n_fte_images,
                "fte_rate": n_fte_images / len(image_set) if image_set else None,
                "fte_reasons": dict(
                    Counter(code for i in image_set if (code := getattr(records[i], fte_attr)))
                ),
                "operating_point_same_enrolled": operating_point(
                    [r[system][1] for r in both if r["pair"].same],
                    [r[system][1] for r in both if not r["pair"].same],
                    0,
                    0,
                ),
                "operating_point_all_pairs": operating_point(
                    [r[system][1] for r in own if r["pair"].same],
                    [r[system][1] for r in own if not r["pair"].same],
                    fte_gen,
                    fte_imp,
                ),
            }
        fused = [r for r in rows if r["product"] is not None]
        out["product"]["fusion_pair_rate"] = (
            sum(r["product"][2] == "fusion" for r in fused) / len(fused) if fused else None
        )
        return out

    pooled = accuracy(scored, images)
    subsets: dict[str, Any] = {}
    for subset in sorted({r["pair"].subset for r in scored}):
        rows = [r for r in scored if r["pair"].subset == subset]
        subset_images = [i for i in images if i.split("/")[0] == subset]
        subsets[subset] = accuracy(rows, subset_images)

    return {
        "speed": speed,
        "accuracy": pooled,
        "subsets": subsets,
        "calibration": {
            "dataset": cal.dataset,
            "threshold": cal.threshold,
            "fmr_target": cal.fmr_target,
            "low_confidence": cal.low_confidence,
            "n_genuine": cal.n_genuine,
            "n_impostor": cal.n_impostor,
            "created_at": cal.created_at,
            "primary": cal.primary,
            "secondary": cal.secondary,
        },
        "peer": {
            "pipeline": "face_locations(hog, upsample=1) -> largest -> "
            f"face_encodings(model={args.peer_landmarks!r}, num_jitters=1)",
            "threshold_distance": PEER_TOLERANCE,
            "landmarks": "5-point" if args.peer_landmarks == "small" else "68-point",
        },
        "n_images": len(images),
        "n_pairs": len(scored),
    }


# --------------------------------------------------------------------------- markdown


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float | None, fmt: str = ".1f") -> str:
    return "n/a" if x is None else format(x, fmt)


def rate(x: float | None, errors: int, n: int) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} % ({errors}/{n})"


def tar_cell(report: dict[str, Any] | None, key: str, fmr: str) -> str:
    if report is None:
        return "n/a"
    flag = " †" if fmr in report["low_confidence_fmrs"] else ""
    return pct(report[key][fmr]) + flag


# Below this line docs/benchmarks.md holds other benchmarks' hand-written results: kept as is.
KEEP_MARKER = "<!-- Hand-written below: kept by compare_peers.py when it rewrites the above. -->"


def kept_tail(out: Path) -> str:
    """The part of the existing report from KEEP_MARKER on ('' without one)."""
    try:
        text = out.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    at = text.find(KEEP_MARKER)
    return "" if at < 0 else "\n" + text[at:]


def markdown(result: dict[str, Any], env: dict[str, Any], command: str) -> str:
    sp, acc, cal = result["speed"], result["accuracy"], result["calibration"]
    pc = sp["per_comparison"]
    names = {"product": "faceproof (cascade)", "peer": "face_recognition 1.3.0"}
    pk = env["packages"]
    lines = [
        "# Benchmarks: faceproof vs face_recognition",
        "",
        "Generated by `benchmarks/compare_peers.py` (see `benchmarks/README.md`). Numbers are from "
        "one run on a shared machine; re-run to refresh, do not edit by hand.",
        "",
        f"- **Date:** {env['date']} (run took {env['wall_minutes']:.1f} min)",
        f"- **Machine:** {env['cpu_model']}, nproc {env['nproc']}; both systems pinned to core "
        f"{env['pinned_core']}, 1 thread each (OMP/OPENBLAS/MKL_NUM_THREADS=1, onnxruntime "
        "threads=1, cv2.setNumThreads(1)); load average at start "
        f"{' / '.join(map(str, env['loadavg_start']))}, at end "
        f"{' / '.join(map(str, env['loadavg_end']))}",
        f"- **Software:** Python {env['python']} ({env['platform']}); onnxruntime "
        f"{pk['onnxruntime']}, dlib-bin {pk['dlib-bin']}, face_recognition "
        f"{pk['face-recognition']}, face_recognition_models {pk['face-recognition-models']}, "
        f"numpy {pk['numpy']}, opencv-python-headless {pk['opencv-python-headless']}, "
        f"pillow {pk['pillow']}, faceproof {pk['faceproof']} (git {env['git']})",
        f"- **Command:** `{command}`",
        f"- **Data:** `{result['pairs_file']}`: {result['n_pairs']} pairs "
        f"({acc['n_genuine']} genuine, {acc['n_impostor']} impostor) over "
        f"{result['n_images']} distinct images",
        f"- **faceproof:** YuNet + SFace (`{cal['primary']}`), dlib ResNet (`{cal['secondary']}`) "
        f"as the cascade's second opinion; calibration `{cal['dataset']}` "
        f"(created {cal['created_at']}), threshold z >= {cal['threshold']:.4f} for target FMR "
        f"{cal['fmr_target']:g}{' (flagged low-confidence)' if cal['low_confidence'] else ''}",
        f"- **face_recognition:** {result['peer']['pipeline']}; score = -euclidean distance, "
        f"match when distance <= {PEER_TOLERANCE}",
        "",
        "## Speed (detect + embed per image, one core)",
        "",
        f"Each image timed {sp['repeats']}x per system, the two systems interleaved on the same "
        "image with their order alternating per repeat; per image the median of the repeats, "
        "then the median and 90th percentile over images. Decoding is shared (same pixels for "
        "both) and excluded; faceproof's decode is shown for reference.",
        "",
        "| | median ms / image | p90 ms / image | images |",
        "|---|---:|---:|---:|",
        f"| faceproof: YuNet + SFace (`template`) | {num(sp['product_template_ms']['median'])} "
        f"| {num(sp['product_template_ms']['p90'])} | {sp['product_template_ms']['n']} |",
        f"| faceproof: dlib second opinion (`extend`, only images that needed it) "
        f"| {num(sp['product_extension_ms']['median'])} "
        f"| {num(sp['product_extension_ms']['p90'])} | {sp['product_extension_ms']['n']} |",
        f"| **faceproof total** (template + extend where needed) "
        f"| **{num(sp['product_ms']['median'])}** | {num(sp['product_ms']['p90'])} "
        f"| {sp['product_ms']['n']} |",
        f"| **face_recognition** (HOG + {result['peer']['landmarks']} landmarks + ResNet) "
        f"| **{num(sp['peer_ms']['median'])}** | {num(sp['peer_ms']['p90'])} "
        f"| {sp['peer_ms']['n']} |",
        f"| decode (faceproof `load_image`, shared, not in either row) "
        f"| {num(sp['decode_ms']['median'])} | {num(sp['decode_ms']['p90'])} "
        f"| {sp['decode_ms']['n']} |",
        "",
        "| ratio face_recognition / faceproof | vs faceproof total | vs template only |",
        "|---|---:|---:|",
        f"| ratio of the medians | {num(sp['ratio_of_medians'], '.2f')}x "
        f"| {num(sp['ratio_of_medians_template_only'], '.2f')}x |",
        f"| median of per-image ratios | {num(sp['per_image_ratio']['median'], '.2f')}x "
        f"| {num(sp['per_image_ratio_template_only']['median'], '.2f')}x |",
        f"| p90 of per-image ratios | {num(sp['per_image_ratio']['p90'], '.2f')}x "
        f"| {num(sp['per_image_ratio_template_only']['p90'], '.2f')}x |",
        "",
        "Pooled medians follow the largest subset (ORL: 400 of the 580 images, 92x112 px), "
        "so read them together with the per-subset rows. "
        "Per subset (image size drives both costs: YuNet runs on the image padded to a "
        "multiple of 32 (long side at most 640 px), "
        "face_recognition's HOG scans the image upsampled 2x, so small images favour it):",
        "",
        "| subset | images | median long side px | faceproof median ms | face_recognition "
        "median ms | ratio of medians |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {s['images']} | {num(s['median_long_side_px'], '.0f')} "
            f"| {num(s['product_ms']['median'])} | {num(s['peer_ms']['median'])} "
            f"| {num(s['ratio_of_medians'], '.2f')}x |"
            for name, s in sp["subsets"].items()
        ),
        "",
        f"Per comparison (two fresh images; the cascade's dlib second opinion counted only on the "
        f"pairs that took it), over {pc['pairs']} pairs: faceproof mean "
        f"{num(pc['product_mean_ms'])} ms (median {num(pc['product_ms']['median'])}, p90 "
        f"{num(pc['product_ms']['p90'])}), face_recognition mean {num(pc['peer_mean_ms'])} ms "
        f"(median {num(pc['peer_ms']['median'])}, p90 {num(pc['peer_ms']['p90'])}); "
        f"ratio of the means {num(pc['ratio_of_means'], '.2f')}x.",
        "",
        f"Sum over all images (medians): faceproof {sp['product_total_s']:.1f} s, "
        f"face_recognition {sp['peer_total_s']:.1f} s. Images that fail to enrol are timed "
        "until the failure. The cascade ran the second opinion on "
        f"{pct(acc['product']['fusion_pair_rate'], 1)} of scored pairs "
        f"({sp['images_extended']} of {sp['images_timed']} images needed `extend`).",
        "",
        "## Accuracy",
        "",
        "EER, TAR and AUC on the **same enrolled pairs** (pairs both systems could score); FTE and "
        "generalized TAR (GTAR: genuine pairs with an FTE image count as rejections, threshold "
        "set on the scored impostors) on **all pairs**, each system on its own. "
        "† = fewer than 3/FMR impostor pairs (rule of 3): not statistically supported. "
        "FMR 1e-4 is not reported: it would need >= 30 000 impostor pairs.",
        "",
        f"Same enrolled pairs: {acc['common_genuine']} genuine, {acc['common_impostor']} impostor.",
        "",
        "| system | EER | TAR @ FMR 1e-2 | TAR @ FMR 1e-3 | AUC | FTE (images) "
        "| GTAR @ FMR 1e-3 (all pairs) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system in ("product", "peer"):
        s = acc[system]
        common, allp = s["same_enrolled"], s["all_pairs"]
        lines.append(
            f"| {names[system]} | {pct(common['eer']) if common else 'n/a'} "
            f"| {tar_cell(common, 'tar_at_fmr', '1e-2')} "
            f"| {tar_cell(common, 'tar_at_fmr', '1e-3')} "
            f"| {num(common['auc'], '.5f') if common else 'n/a'} "
            f"| {pct(s['fte_rate'])} ({s['fte_images']}/{result['n_images']}) "
            f"| {tar_cell(allp, 'gtar_at_fmr', '1e-3')} |"
        )
    lines += [
        "",
        "All pairs, each system on its own (plain numbers on the pairs it scored, generalized "
        "with its FTE pairs as rejections):",
        "",
        "| system | scored gen / imp | FTE gen / imp pairs | EER (scored) | GTAR @ 1e-2 "
        "| GTAR @ 1e-3 | FTE reasons |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for system in ("product", "peer"):
        s = acc[system]
        allp = s["all_pairs"]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["fte_reasons"].items())) or "none"
        if allp is None:
            lines.append(f"| {names[system]} | n/a | | | | | {reasons} |")
            continue
        lines.append(
            f"| {names[system]} | {allp['n_genuine']} / {allp['n_impostor']} "
            f"| {allp['n_fte_genuine']} / {allp['n_fte_impostor']} | {pct(allp['eer'])} "
            f"| {tar_cell(allp, 'gtar_at_fmr', '1e-2')} "
            f"| {tar_cell(allp, 'gtar_at_fmr', '1e-3')} | {reasons} |"
        )

    lines += [
        "",
        "## Per subset",
        "",
        "The subset is the first path component. EER and AUC on each subset's same enrolled "
        "pairs; FTE images per system. Subsets with few pairs give coarse numbers (one pair "
        "moves the EER by 1/n).",
        "",
        "| subset | same enrolled gen / imp | EER faceproof | EER face_recognition "
        "| AUC faceproof | AUC face_recognition | FTE faceproof | FTE face_recognition |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for subset, s in result["subsets"].items():
        pc, qc = s["product"]["same_enrolled"], s["peer"]["same_enrolled"]
        lines.append(
            f"| {subset} | {s['common_genuine']} / {s['common_impostor']} "
            f"| {pct(pc['eer']) if pc else 'n/a'} | {pct(qc['eer']) if qc else 'n/a'} "
            f"| {num(pc['auc'], '.4f') if pc else 'n/a'} "
            f"| {num(qc['auc'], '.4f') if qc else 'n/a'} "
            f"| {s['product']['fte_images']} | {s['peer']['fte_images']} |"
        )

    lines += [
        "",
        "## Operating point (each system's own threshold)",
        "",
        f"faceproof decides with `CompareResult.match` at its calibrated threshold "
        f"(z >= {cal['threshold']:.4f}, target FMR {cal['fmr_target']:g}); face_recognition "
        f"with distance <= {PEER_TOLERANCE}. Observed rates, with error counts.",
        "",
        "| system | pairs | FMR | FNMR |",
        "|---|---|---:|---:|",
    ]
    for system in ("product", "peer"):
        s = acc[system]
        c, a = s["operating_point_same_enrolled"], s["operating_point_all_pairs"]
        c_fmr = rate(c["fmr"], c["false_matches"], c["n_impostor"])
        c_fnmr = rate(c["fnmr"], c["false_non_matches"], c["n_genuine"])
        a_fmr = rate(a["gfmr"], a["false_matches"], a["n_impostor"] + a["fte_impostor"])
        a_fnmr = rate(
            a["gfnmr"], a["false_non_matches"] + a["fte_genuine"], a["n_genuine"] + a["fte_genuine"]
        )
        lines.append(f"| {names[system]} | same enrolled | {c_fmr} | {c_fnmr} |")
        lines.append(f"| {names[system]} | all pairs, generalized | {a_fmr} | {a_fnmr} |")
    lines += [
        "",
        "Per subset, all pairs, generalized (FMR / FNMR at each system's own threshold):",
        "",
        "| subset | faceproof FMR | faceproof FNMR | face_recognition FMR "
        "| face_recognition FNMR |",
        "|---|---:|---:|---:|---:|",
    ]
    for subset, s in result["subsets"].items():
        cells = []
        for system in ("product", "peer"):
            a = s[system]["operating_point_all_pairs"]
            cells.append(rate(a["gfmr"], a["false_matches"], a["n_impostor"] + a["fte_impostor"]))
            cells.append(
                rate(
                    a["gfnmr"],
                    a["false_non_matches"] + a["fte_genuine"],
                    a["n_genuine"] + a["fte_genuine"],
                )
            )
        lines.append(f"| {subset} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "## Caveats",
        "",
        "- **Small developer data set.** "
        f"{result['n_images']} images, four small sets dominated by ORL (92x112 greyscale lab "
        "shots from 1992-94) and Big Bang Theory stills. None of it is selfie-vs-ID-document "
        "data; treat the numbers as a sanity check, not as a product accuracy claim.",
        "- **Impostors are sampled within each set** (as many as its genuine pairs), never across "
        "sets: pooled numbers are a mix of per-set problems, and cross-set impostors would be "
        "easier. Read the per-subset table.",
        f"- **faceproof's threshold and cascade were calibrated on this same shared data** "
        f"(calibration dataset: `{cal['dataset']}`), so its operating-point FMR/FNMR above are "
        "in-sample and optimistic. face_recognition's 0.6 is the library's generic default, not "
        "tuned here. EER, TAR and AUC do not depend on either threshold, but the cascade's "
        "second-opinion band was also fitted on these pairs.",
        f"- **Rule of 3.** This run has {acc['n_impostor']} impostor pairs, so FMR 1e-3 is "
        f"{'only just' if acc['n_impostor'] >= 3000 else 'not'} supported (3/FMR = 3000) and "
        "1e-4 cannot be checked here: even zero false matches among "
        f"{acc['n_impostor']} impostors would only bound the true FMR below about "
        f"{3 / max(acc['n_impostor'], 1):.1e} (95 %). faceproof's calibration set its "
        f"{cal['fmr_target']:g} threshold on {cal['n_impostor']} within-set impostor pairs of the "
        "same images (enough for the rule of 3, but in-sample), allowing about "
        f"{cal['fmr_target'] * cal['n_impostor']:.0f} false matches there; this run saw "
        f"{acc['product']['operating_point_all_pairs']['false_matches']} among its "
        f"{acc['n_impostor']} impostors.",
        "- **FTE changes the pairs.** EER / TAR on the same enrolled pairs leave out the images "
        "face_recognition's HOG detector missed, which are among the harder ones; compare "
        "faceproof's EER there with its EER on all the pairs it scored (second table).",
        "- **Same descriptor inside.** faceproof's second opinion is the same dlib ResNet that "
        "face_recognition uses (faceproof aligns it from YuNet landmarks instead of HOG + "
        "dlib landmarks), so the two systems are not independent.",
        "- **Timing** is wall-clock on a shared, noisy machine, one core, after a warm-up pass; "
        "interleaving spreads load spikes over both systems, but absolute milliseconds will "
        "differ elsewhere. The ratio is the more portable number. face_recognition's HOG "
        "detector upsamples each image 2x (upsample=1), which is most of its cost; it finds "
        "fewer small faces without it.",
    ]
    for name, x in sp["subsets"].items():
        if x["ratio_of_medians"] < 1:
            lines.append(
                f"- **faceproof is slower on {name}** ({x['ratio_of_medians']:.2f}x): "
                f"{x['images_extended']} of its {x['images']} images needed the dlib second "
                "opinion (SFace's score fell in the cascade's uncertainty band for at least one "
                "of their pairs), so they pay YuNet + SFace + dlib, while HOG on a "
                f"{x['median_long_side_px']:.0f} px image is cheap."
            )
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, help="pairs.csv")
    parser.add_argument(
        "--limit", type=int, default=0, help="first N distinct images only (quick runs)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per image and system (median taken)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report path")
    parser.add_argument("--json", action="store_true", help="also print a JSON summary to stdout")
    parser.add_argument(
        "--peer-landmarks",
        choices=("small", "large"),
        default="small",
        help="face_encodings landmark model (its default 'small' = 5-point)",
    )
    parser.add_argument("--core", type=int, default=None, help="CPU core to pin to")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.limit < 0:
        parser.error("--limit must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rich.console import Console

    console = Console(stderr=True)
    if not args.pairs.is_file():
        if not SHARED_DATA.is_dir():
            console.print(
                f"[yellow]skipped:[/] {SHARED_DATA} is absent (evaluation data is not part of "
                "the repo); nothing to benchmark."
            )
            return 0
        console.print(f"[red]pairs file not found:[/] {args.pairs}")
        return 2
    try:
        import_peer()
    except ImportError:
        console.print(
            "[red]face_recognition is not installed.[/] Run with the bench group: "
            "uv run --group bench python benchmarks/compare_peers.py"
        )
        return 2

    allowed = sorted(os.sched_getaffinity(0))
    core = args.core if args.core is not None else allowed[-1]
    os.sched_setaffinity(0, {core})
    env = environment(core)
    command = "uv run --group bench python benchmarks/compare_peers.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    started = time.monotonic()
    from faceproof.errors import ServiceError

    try:
        result = run(args, console)
    except ServiceError as exc:
        console.print(f"[red]faceproof could not start:[/] {exc}")
        return 2
    env["wall_minutes"] = (time.monotonic() - started) / 60
    env["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["environment"] = env
    result["command"] = command.strip()
    result["pairs_file"] = os.path.relpath(args.pairs.resolve(), REPO_ROOT)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        markdown(result, env, command.strip()) + kept_tail(args.out), encoding="utf-8"
    )
    sp, acc = result["speed"], result["accuracy"]
    for system, label in (("product", "faceproof"), ("peer", "face_recognition")):
        common = acc[system]["same_enrolled"]
        console.print(
            f"{label}: EER {pct(common['eer']) if common else 'n/a'}, "
            f"TAR@1e-3 {tar_cell(common, 'tar_at_fmr', '1e-3')}, "
            f"FTE {pct(acc[system]['fte_rate'])}"
        )
    console.print(
        f"speed: faceproof {num(sp['product_ms']['median'])} ms, face_recognition "
        f"{num(sp['peer_ms']['median'])} ms per image; ratio {num(sp['ratio_of_medians'], '.2f')}x"
    )
    console.print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
