"""Liveness: analysis time, generated attack/bona fide error rates, and real live clips.

    uv run python benchmarks/liveness_bench.py [--seeds N] [--threads 1]

1. Time: `LivenessEngine.analyze` on a generated 3 s, 15 fps, 640x480 clip (target <= 300 ms
   on one core), median of several runs, with a per-stage breakdown.
2. Generated clips: APCER per attack type and BPCER on bona fide-like head turns, N seeds each.
3. Real bona fide clips in ../shared/data/pad/live_video (if present): what the engine says on
   each (reported, never asserted; the clips are talking heads, not liveness sessions).
Frames stay in memory; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from faceproof.errors import FaceproofError
from faceproof.liveness import LivenessEngine, load_clip
from faceproof.liveness.synthetic import (
    ATTACK_KINDS,
    SceneKit,
    attack_clip,
    bona_fide_clip,
)
from faceproof.parallel import Helpers

LIVE_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "pad" / "live_video"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    kit = SceneKit.build()
    clip = bona_fide_clip(kit, "turns", seed=0)
    # One analysis on one thread, then on two (the default on a machine with two cores):
    # the same result, interleaved runs.
    engines = {n: LivenessEngine(helpers=Helpers(n - 1)) for n in (1, 2)}
    times: dict[int, list[float]] = {1: [], 2: []}
    for e in engines.values():
        e.analyze(clip)  # warm-up
    for _ in range(args.runs):
        for n, e in engines.items():
            t0 = time.perf_counter()
            e.analyze(clip)
            times[n].append((time.perf_counter() - t0) * 1000)
    for n, ts in times.items():
        print(
            f"analysis of {len(clip.frames)} frames 640x480 ({clip.duration:.1f} s): "
            f"median {statistics.median(ts):.0f} ms, min {min(ts):.0f} ms "
            f"over {args.runs} runs ({n} thread{'s' if n > 1 else ''})"
        )
    engine = engines[1]
    # Stage breakdown (one thread).
    t0 = time.perf_counter()
    track = engine._track(clip)
    t1 = time.perf_counter()
    engine._identity(clip, track)
    t2 = time.perf_counter()
    engine._timing(clip)
    t3 = time.perf_counter()
    print(
        f"  tracking (YuNet keyframes + mesh) {1000 * (t1 - t0):.0f} ms, "
        f"identity (SFace x3) {1000 * (t2 - t1):.0f} ms, timing {1000 * (t3 - t2):.0f} ms"
    )
    engine = engines[2]

    print("\ngenerated clips (seeds 100..):")
    for kind in ATTACK_KINDS:
        accepted, residuals, motions = 0, [], []
        for s in range(args.seeds):
            r = engine.analyze(attack_clip(kit, kind, seed=100 + s))
            accepted += r.live
            residuals.append(r.check("parallax").details["residual"])
            motions.append(r.check("parallax").details["max_motion"])
        print(
            f"  attack {kind:13s} APCER {accepted}/{args.seeds}  "
            f"homography residual max {max(residuals):.4f}  motion max {max(motions):.3f}"
        )
    for kind in ("turns", "nod_and_turn"):
        rejected, residuals, motions = 0, [], []
        for s in range(args.seeds):
            r = engine.analyze(bona_fide_clip(kit, kind, seed=100 + s))
            rejected += not r.live
            residuals.append(r.check("parallax").details["residual"])
            motions.append(r.check("parallax").details["max_motion"])
        print(
            f"  bona fide {kind:12s} BPCER {rejected}/{args.seeds}  "
            f"homography residual min {min(residuals):.4f}  motion min {min(motions):.3f}"
        )

    if not LIVE_VIDEO.is_dir():
        print(f"\n{LIVE_VIDEO} is absent: real clips skipped")
        return
    print(f"\nreal live clips in {LIVE_VIDEO}:")
    passed = total = 0
    for path in sorted(LIVE_VIDEO.glob("*.mp4")):
        total += 1
        try:
            r = engine.analyze(load_clip(path))
        except FaceproofError as exc:
            print(f"  {path.name:28s} error {exc.code.value}")
            continue
        passed += r.live
        par = r.check("parallax").details
        print(
            f"  {path.name:28s} live={r.live!s:5s} score={r.score:.2f} "
            f"reasons={[c.value for c in r.reasons]} residual={par['residual']:.4f} "
            f"max_motion={par['max_motion']:.3f} "
            f"identity_cos={r.check('continuity').details['min_identity_cosine']:.2f} "
            f"frames={r.frames} {r.analysis_ms:.0f} ms"
        )
    print(f"  {passed}/{total} real live clips pass")


if __name__ == "__main__":
    main()
