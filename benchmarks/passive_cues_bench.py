"""Passive screen/print cues: where their thresholds come from and what they do on real data.

    uv run python benchmarks/passive_cues_bench.py [--seeds N] [--skip-generated]

1. Generated clips (seeds 200..): the cue values and the engine's verdict on bona fide-like
   head turns (BPCER), the seven attack kinds and video replays (APCER), and the time the
   passive check adds to one 3 s, 15 fps, 640x480 clip.
2. Real live clips in ../shared/data/pad/live_video (if present): the engine's verdict and the
   cue values (BPCER; reported, never asserted).
3. ../shared/data/pad/minivision_silent_face (if present): image_T1 live, image_F1 print,
   image_F2 replay; read with EXIF orientation applied; face found by YuNet.
4. ../shared/data/pad/set_a_pyimagesearch_2019 (if present): every crop resized to one fixed
   size (224x224) first, to remove the size confound (README there); the cues on the crop.
   These are tight face crops: no framing, no glare; only the spectral cue can say anything.
Frames and images stay in memory; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import cv2
import numpy as np

from faceproof.evaluation.pad_eval import CROP_SIDE, crop_cues, image_cues
from faceproof.faces.detector import YuNetDetector
from faceproof.liveness import LivenessEngine, load_clip
from faceproof.liveness.cues import CueThresholds, FrameCues, decide
from faceproof.liveness.synthetic import (
    ATTACK_KINDS,
    SceneKit,
    attack_clip,
    bona_fide_clip,
    replay_clip,
)

PAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "pad"
FIXED = CROP_SIDE  # set A crops are all resized to FIXED x FIXED (224)


def _fmt(c: FrameCues) -> str:
    return (
        f"moire {c.moire:5.2f} halftone {c.halftone:5.2f} sides {c.frame_sides} "
        f"glare {c.glare:.3f} sat {c.saturation:.2f}"
    )


def _passive_line(details: dict[str, object]) -> str:
    keys = ("moire", "halftone", "frame_sides", "glare", "why")
    return " ".join(f"{k}={details[k]}" for k in keys if k in details)


def generated(engine: LivenessEngine, kit: SceneKit, seeds: int) -> None:
    print(f"generated clips, seeds 200..{199 + seeds}:")
    peaks: list[float] = []
    rejected = total = 0
    for kind in ("turns", "nod_and_turn"):
        for s in range(seeds):
            r = engine.analyze(bona_fide_clip(kit, kind, seed=200 + s))
            d = r.check("passive").details
            peaks.append(max(float(d["moire"]), float(d["halftone"])))
            rejected += not r.check("passive").passed
            total += 1
    print(
        f"  bona fide-like: passive rejects {rejected}/{total}; spectral peak min "
        f"{min(peaks):.2f}, median {statistics.median(peaks):.2f}, max {max(peaks):.2f}"
    )
    for kind in ATTACK_KINDS:
        caught = live = 0
        lines = []
        attack_peaks = []
        for s in range(seeds):
            r = engine.analyze(attack_clip(kit, kind, seed=200 + s))
            d = r.check("passive").details
            caught += not r.check("passive").passed
            live += r.live
            attack_peaks.append(max(float(d["moire"]), float(d["halftone"])))
            lines.append(_passive_line(d))
        print(
            f"  {kind:13s} passive catches {caught}/{seeds}, engine APCER {live}/{seeds}, "
            f"spectral peak min {min(attack_peaks):.2f}"
        )
        print("      e.g. " + lines[0])
    caught = live = 0
    attack_peaks = []
    for s in range(seeds):
        kind = ("turns", "nod_and_turn")[s % 2]
        recording = bona_fide_clip(kit, kind, seed=300 + s)
        r = engine.analyze(replay_clip(kit, recording, seed=300 + s))
        caught += not r.check("passive").passed
        live += r.live
        d = r.check("passive").details
        attack_peaks.append(max(float(d["moire"]), float(d["halftone"])))
        if s == 0:
            print("      replay e.g. " + _passive_line(r.check("passive").details))
    print(
        f"  {'replay':13s} passive catches {caught}/{seeds}, engine APCER {live}/{seeds}, "
        f"spectral peak min {min(attack_peaks):.2f}"
    )
    # Timing: the whole analysis and the passive check alone.
    clip = bona_fide_clip(kit, "turns", seed=0)
    engine.analyze(clip)
    whole, passive = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        engine.analyze(clip)
        whole.append(1000 * (time.perf_counter() - t0))
    track = engine._track(clip)
    tracked = [i for i, m in enumerate(track.meshes) if m is not None]
    meshes = [track.meshes[i] for i in tracked]
    for _ in range(7):
        t0 = time.perf_counter()
        engine._passive(clip, tracked, meshes)
        passive.append(1000 * (time.perf_counter() - t0))
    print(
        f"  time, 3 s 15 fps 640x480: whole analysis median {statistics.median(whole):.0f} ms, "
        f"passive check median {statistics.median(passive):.1f} ms"
    )


def live_video(engine: LivenessEngine) -> None:
    folder = PAD / "live_video"
    if not folder.is_dir():
        print(f"\n{folder} absent: real live clips skipped")
        return
    clips = sorted(folder.glob("*.mp4"))
    passed = passive_rejects = 0
    print(f"\nreal live clips ({len(clips)}):")
    for path in clips:
        r = engine.analyze(load_clip(path))
        passed += r.live
        passive_rejects += not r.check("passive").passed
        print(
            f"  {path.name:28s} live={r.live!s:5} {[c.value for c in r.reasons]} "
            f"{_passive_line(r.check('passive').details)}"
        )
    print(
        f"  engine passes {passed}/{len(clips)}; passive cues reject "
        f"{passive_rejects}/{len(clips)} (BPCER of the cues alone)"
    )


def minivision(thresholds: CueThresholds) -> None:
    folder = PAD / "minivision_silent_face"
    if not folder.is_dir():
        print(f"\n{folder} absent: skipped")
        return
    detector = YuNetDetector()
    print("\nminivision_silent_face (EXIF orientation applied by cv2.imread):")
    for name, label in (("image_T1", "live"), ("image_F1", "print"), ("image_F2", "replay")):
        bgr = cv2.imread(str(folder / f"{name}.jpg"), cv2.IMREAD_COLOR)  # applies EXIF
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        cues = image_cues(detector, rgb)
        if cues is None:
            print(f"  {name} ({label}): no face found")
            continue
        v = decide(cues, thresholds)
        verdict = "screen" if v.screen else "print" if v.print_ else "no attack cue"
        print(f"  {name} ({label:6s}) {rgb.shape[1]}x{rgb.shape[0]}: {verdict:13s} {_fmt(cues)}")


def set_a(thresholds: CueThresholds) -> None:
    folder = PAD / "set_a_pyimagesearch_2019"
    if not folder.is_dir():
        print(f"\n{folder} absent: skipped")
        return
    print(f"\nset A (every crop resized to {FIXED}x{FIXED}; tight crops, spectral cue only):")
    by_label: dict[str, list[float]] = {}
    for label in ("live", "replay"):
        files = sorted((folder / label).glob("*.png"))
        flagged, peaks = 0, []
        for path in files:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            cues = crop_cues(np.ascontiguousarray(bgr[:, :, ::-1]), FIXED)
            v = decide(cues, thresholds)
            flagged += v.screen or v.print_
            peaks.append(max(cues.moire, cues.halftone))
        rate = "APCER" if label == "replay" else "BPCER"
        print(
            f"  {label:6s} n={len(files)}: flagged {flagged} ({rate} "
            f"{100 * (flagged if label == 'live' else len(files) - flagged) / len(files):.1f}%); "
            f"spectral peak median {statistics.median(peaks):.2f}, "
            f"p10 {np.percentile(peaks, 10):.2f}, p90 {np.percentile(peaks, 90):.2f}, "
            f"max {max(peaks):.2f}"
        )
        by_label[label] = peaks
    # What the spectral peak could do as a score here at all: the threshold at the live
    # crops' 90th percentile (BPCER 10 %) and the APCER it gives (not an operating point).
    cut = float(np.percentile(by_label["live"], 90))
    missed = sum(p < cut for p in by_label["replay"])
    print(
        f"  as a score: threshold {cut:.2f} (BPCER 10 % on these live crops) gives APCER "
        f"{100 * missed / len(by_label['replay']):.1f}% ({missed}/{len(by_label['replay'])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--skip-generated", action="store_true")
    args = parser.parse_args()
    engine = LivenessEngine()
    if not args.skip_generated:
        generated(engine, SceneKit.build(), args.seeds)
    live_video(engine)
    minivision(engine.config.cues)
    set_a(engine.config.cues)


if __name__ == "__main__":
    main()
