"""Blink and open mouth: rendered challenges, attacks and real clips, as the engine reads them.

    uv run python benchmarks/liveness_actions_bench.py [--seeds 3] [--runs 5]

1. Rendered bona fide heads following 2-action challenges with blink / open_mouth (encoded to
   MP4 and decoded, as an upload): the strongest change per action in its window, whether the
   challenge passes, and whether the same clip fails a challenge whose action is missing.
2. Every generated attack species and a replay, against a (blink, open_mouth) challenge.
3. Real live clips (../shared/data/pad/live_video, if present): the engine's verdict without a
   challenge, and how often an action would count by chance in a 2 s window (talking, natural
   blinks) with the face mesh alone and with refined eyelids, at old and current thresholds.
4. Time: the same 3 s clip without a challenge, with a blink asked, and with every frame's
   eyelids refined, interleaved.

Parts 1, 2 and 4 use the service's engine (eyelids refined only where a blink is judged, in
two passes); part 3 compares it with every frame refined.
Frames stay in memory; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np

from faceproof.liveness import Clip, LivenessEngine, load_clip
from faceproof.liveness.challenge import ActionThresholds, Challenge, FrameMeasures, follow_actions
from faceproof.liveness.landmarks import FaceMesh, FaceMeshLandmarker
from faceproof.liveness.landmarks import eye_aspect_ratio as ear
from faceproof.liveness.landmarks import mouth_openness as mouth
from faceproof.liveness.synthetic import (
    ATTACK_KINDS,
    SceneKit,
    attack_clip,
    bona_fide_clip,
    challenge_motion,
    encode_video,
    replay_clip,
)

LIVE_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "pad" / "live_video"
WINDOWS = ((0.6, 2.6), (2.6, 4.6))
PAIRS = (
    ("blink", "open_mouth"),
    ("open_mouth", "blink"),
    ("turn_left", "blink"),
    ("open_mouth", "turn_right"),
    ("look_up", "open_mouth"),
    ("blink", "look_up"),
)
OLD = ActionThresholds(mouth_open=0.25)


def ask(*actions: str) -> Challenge:
    return Challenge("bench", "bench", actions, WINDOWS[: len(actions)], 0.0, 1e12)


def peaks(result: object) -> str:
    checks = result.check("challenge").details["actions"]  # type: ignore[attr-defined]
    return ", ".join(
        f"{c['action']} {c['peak']:.2f}{'' if c['done'] else ' (missed)'}" for c in checks
    )


def rendered(kit: SceneKit, engine: LivenessEngine, seeds: int) -> None:
    print("1. rendered challenges (MP4 round trip), the service's engine:")
    th = ActionThresholds()
    blink, mouth_peaks, passed, rejected, total = [], [], 0, 0, 0
    for actions in PAIRS:
        for seed in range(seeds):
            motion = challenge_motion(actions, WINDOWS)
            clip = load_clip(
                encode_video(
                    bona_fide_clip(kit, "challenge", seconds=5.0, motion=motion, seed=seed)
                )
            )
            result = engine.analyze(clip, ask(*actions))
            for c in result.check("challenge").details["actions"]:
                if c["action"] == "blink":
                    blink.append(c["peak"])
                elif c["action"] == "open_mouth":
                    mouth_peaks.append(c["peak"])
            passed += result.live
            # The same clip against the challenge with blink and open_mouth exchanged: one of
            # them is then missing from its window (or both are out of order).
            swap = {"blink": "open_mouth", "open_mouth": "blink"}
            wrong = tuple(swap.get(a, a) for a in actions)
            rejected += not engine.analyze(clip, ask(*wrong)).live
            total += 1
            print(f"   {'+'.join(actions):22s} seed {seed}: live={result.live}  {peaks(result)}")
    print(
        f"   passed {passed}/{total}; the same clips with blink<->open_mouth swapped rejected "
        f"{rejected}/{total}; blink drop min {min(blink):.2f} (needs {1 - th.blink_ratio:.2f}), "
        f"mouth rise {min(mouth_peaks):.3f}-{max(mouth_peaks):.3f} (needs {th.mouth_open})"
    )


def attacks(kit: SceneKit, engine: LivenessEngine, seeds: int) -> None:
    print("2. attacks against (blink, open_mouth):")
    asked = ask("blink", "open_mouth")
    recording = bona_fide_clip(
        kit, "challenge", seconds=5.0, motion=challenge_motion(asked.actions, WINDOWS)
    )
    for kind in (*ATTACK_KINDS, "replay"):
        live = 0
        reasons: set[str] = set()
        for seed in range(seeds):
            clip = (
                replay_clip(kit, recording, seed=seed)
                if kind == "replay"
                else attack_clip(kit, kind, seed=seed, seconds=5.0)
            )
            result = engine.analyze(clip, asked)
            live += result.live
            reasons |= {r.value for r in result.reasons}
        print(f"   {kind:13s} live {live}/{seeds}  reasons {sorted(reasons)}")


def plain_mesh(mesh: FaceMesh) -> FaceMesh:
    return FaceMesh(mesh.points, mesh.presence, mesh.roi)


def chance_windows(
    measures: list[FrameMeasures], action: str, th: ActionThresholds
) -> tuple[int, int]:
    """In how many 2 s windows (stepped by 0.5 s, after the 0.5 s neutral start) the action
    would count."""
    end = measures[-1].t - measures[0].t
    starts = np.arange(0.6, max(end - 2.0, 0.6) + 1e-9, 0.5)
    hits = sum(
        follow_actions(measures, Challenge("c", "c", (action,), ((s, s + 2.0),), 0, 1), th)[0]
        for s in starts
    )
    return int(hits), len(starts)


def engine_blink_windows(
    engine: LivenessEngine, clip: Clip, measures: list[FrameMeasures]
) -> tuple[int, int]:
    """`chance_windows` for a blink as the engine judges it (its two refinement passes)."""
    end = measures[-1].t - measures[0].t
    starts = np.arange(0.6, max(end - 2.0, 0.6) + 1e-9, 0.5)
    hits = 0
    for s in starts:
        result = engine.analyze(clip, Challenge("c", "c", ("blink",), ((s, s + 2.0),), 0, 1))
        hits += bool(result.check("challenge").passed)
    return hits, len(starts)


def real(engine: LivenessEngine, full: LivenessEngine) -> None:
    if not LIVE_VIDEO.is_dir():
        print(f"3. real live clips: {LIVE_VIDEO} not present, skipped")
        return
    print("3. real live clips: verdict without a challenge; 2 s windows where an action counts")
    for path in sorted(LIVE_VIDEO.glob("*.mp4")):
        clip = load_clip(path)
        result = engine.analyze(clip)
        track = full._track(clip)
        rows = [(t, m) for t, m in zip(clip.timestamps, track.meshes, strict=True) if m is not None]
        refined = [FrameMeasures(t, 0, 0, ear(m), mouth(m)) for t, m in rows]
        plain = [FrameMeasures(t, 0, 0, ear(plain_mesh(m)), mouth(m)) for t, m in rows]
        b_plain = chance_windows(plain, "blink", ActionThresholds())
        b_ref = chance_windows(refined, "blink", ActionThresholds())
        b_engine = engine_blink_windows(engine, clip, refined)
        m_old = chance_windows(refined, "open_mouth", OLD)
        m_new = chance_windows(refined, "open_mouth", ActionThresholds())
        reasons, now = ",".join(r.value for r in result.reasons), ActionThresholds().mouth_open
        print(
            f"   {path.stem:24s} live={result.live!s:5s} {reasons:20s} "
            f"blink plain {b_plain[0]}/{b_plain[1]} refined {b_ref[0]}/{b_ref[1]} "
            f"engine {b_engine[0]}/{b_engine[1]}; "
            f"open_mouth @0.25 {m_old[0]}/{m_old[1]} @{now} {m_new[0]}/{m_new[1]}"
        )


def timing(kit: SceneKit, engine: LivenessEngine, full: LivenessEngine, runs: int) -> None:
    clip = bona_fide_clip(kit, "turns", seed=0)
    blink = ask("turn_left", "blink")
    cases = {
        "no challenge": lambda: engine.analyze(clip),
        "turn_left+blink": lambda: engine.analyze(clip, blink),
        "every frame refined": lambda: full.analyze(clip, blink),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():
        run()
    for _ in range(runs):
        for name, run in cases.items():
            t0 = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - t0) * 1000)
    medians = ", ".join(f"{name} {statistics.median(t):.0f} ms" for name, t in times.items())
    print(f"4. time, {len(clip.frames)} frames, median of {runs} (interleaved): {medians}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # The service's engine: eyelids refined only where a blink is judged, in two passes.
    engine = LivenessEngine()
    # The reference: every frame refined.
    full = LivenessEngine(
        detector=engine.detector,
        embedder=engine.embedder,
        landmarker=FaceMeshLandmarker(refine_eyes=True),
    )
    kit = SceneKit.build(engine.landmarker)
    rendered(kit, engine, args.seeds)
    attacks(kit, engine, args.seeds)
    real(engine, full)
    timing(kit, engine, full, args.runs)


if __name__ == "__main__":
    main()
