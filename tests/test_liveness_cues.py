"""Passive screen/print cues on arrays made in the test (no face models, no files).

Each cue must respond to the pattern it is built for and stay quiet on a smooth face-like
patch with noise and on straight edges that do not frame the face. Real samples in
../shared/data/pad are only reported (skipped when absent): benchmarks/passive_cues_bench.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from faceproof.liveness.cues import (
    CueThresholds,
    FrameCues,
    decide,
    frame_cues,
    framing_sides,
    spectral_peaks,
    summarise,
)

U8 = npt.NDArray[np.uint8]
T = CueThresholds()
PAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "pad"


def _face_like(seed: int, size: int = 128) -> npt.NDArray[np.float64]:
    """A smooth shaded blob with sensor noise and one straight edge (hair line)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 170 - 80 * ((xx - 0.5) ** 2 + (yy - 0.45) ** 2) * 4
    img[: size // 5] -= 60
    img += rng.normal(0, 3, img.shape)
    out: npt.NDArray[np.float64] = cv2.GaussianBlur(img, (0, 0), 1.2) + rng.normal(0, 2, img.shape)
    return out


def _u8(img: npt.NDArray[np.float64]) -> U8:
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(5))
def test_a_plain_face_patch_has_no_periodic_peak(seed: int) -> None:
    mid, high = spectral_peaks(_u8(_face_like(seed)))
    assert max(mid, high) < T.weak_peak, (mid, high)


def test_a_pixel_grid_is_a_high_frequency_peak() -> None:
    img = _face_like(1)
    img[2::3, :] *= 0.6  # dark gaps between pixel rows, 3 px pitch: 0.33 cycles/px
    mid, high = spectral_peaks(_u8(img))
    assert high >= T.peak, (mid, high)
    assert high > mid


def test_a_halftone_screen_is_a_mid_frequency_peak() -> None:
    img = _face_like(2)
    yy, xx = np.mgrid[0:128, 0:128]
    pitch = 6.0  # 45-degree dot screen: 0.167 cycles/px along the diagonal
    dots = (np.cos(2 * math.pi * (xx + yy) / (pitch * math.sqrt(2)) * math.sqrt(2) / 2) + 1) / 2
    mid, high = spectral_peaks(_u8(img * (0.75 + 0.25 * dots)))
    assert mid >= T.peak, (mid, high)
    assert mid > high


def test_coding_blocks_are_not_a_peak() -> None:
    """An 8 px block grid (JPEG/H.264) must not read as a screen."""
    img = _face_like(3)
    img[::8, :] += 8
    img[:, ::8] += 8
    mid, high = spectral_peaks(_u8(img))
    assert max(mid, high) < T.weak_peak, (mid, high)


def test_a_rectangle_around_the_face_frames_it_and_a_door_edge_does_not() -> None:
    grey = np.full((480, 640), 120, np.uint8)
    box = (260.0, 170.0, 120.0, 140.0)
    framed = grey.copy()
    cv2.rectangle(framed, (200, 90), (440, 400), 20, 6)  # a phone's bezel
    assert framing_sides(framed, box) == 4
    door = grey.copy()
    cv2.line(door, (150, 0), (150, 479), 30, 5)  # one vertical edge in the room
    assert framing_sides(door, box) == 1
    far = grey.copy()
    cv2.rectangle(far, (2, 2), (637, 477), 20, 4)  # the whole image border: too far
    assert framing_sides(far, (300.0, 220.0, 40.0, 40.0)) == 0


def test_glare_counts_only_blown_out_colourless_blobs() -> None:
    rgb = np.full((480, 640, 3), 120, np.uint8)
    box = (260.0, 170.0, 120.0, 140.0)
    assert frame_cues(rgb, box).glare == 0.0
    cv2.circle(rgb, (400, 180), 25, (255, 255, 255), -1)
    assert frame_cues(rgb, box).glare > T.glare
    yellow = np.full((480, 640, 3), 120, np.uint8)
    cv2.circle(yellow, (400, 180), 25, (255, 255, 0), -1)  # saturated colour, not glare
    assert frame_cues(yellow, box).glare == 0.0


def test_decide_combines_the_cues() -> None:
    plain = FrameCues(2.2, 1.9, 0, 0.0, 0.5)
    v = decide(plain, T)
    assert not v.screen
    assert not v.print_
    assert v.score >= 0.5
    screen = decide(FrameCues(12.0, 2.0, 0, 0.0, 0.5), T)
    assert screen.screen
    assert not screen.print_
    assert screen.score < 0.5
    halftone = decide(FrameCues(2.0, 9.0, 0, 0.0, 0.3), T)
    assert halftone.print_
    assert not halftone.screen
    weak_unframed = decide(FrameCues(3.0, 2.0, 2, 0.0, 0.5), T)
    assert not weak_unframed.screen
    assert not weak_unframed.print_
    weak_framed = decide(FrameCues(3.0, 2.0, 4, 0.0, 0.5), T)
    assert weak_framed.screen
    glare_unframed = decide(FrameCues(2.0, 1.8, 2, 0.2, 0.5), T)
    assert not glare_unframed.screen
    glare_framed = decide(FrameCues(2.0, 1.8, 3, 0.2, 0.5), T)
    assert glare_framed.screen
    assert "framed+glare" in glare_framed.why


def test_summarise_takes_the_median_per_cue() -> None:
    cues = [FrameCues(3.0, 2.0, 0, 0.0, 0.4), FrameCues(30.0, 2.5, 4, 0.1, 0.5)]
    cues.append(FrameCues(4.0, 2.2, 1, 0.0, 0.6))
    s = summarise(cues)
    assert (s.moire, s.halftone, s.frame_sides, s.glare) == (4.0, 2.2, 1, 0.0)


@pytest.mark.shared_data
def test_shared_pad_images_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """minivision (EXIF orientation 6 applied by cv2.imread) and set A (resized to one size):
    the cue verdicts are printed, never asserted (see benchmarks/passive_cues_bench.py)."""
    folder = PAD / "minivision_silent_face"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (shared evaluation data not installed)")
    from faceproof.faces.detector import YuNetDetector

    detector = YuNetDetector()
    lines = []
    for name in ("image_T1", "image_F1", "image_F2"):
        bgr = cv2.imread(str(folder / f"{name}.jpg"), cv2.IMREAD_COLOR)
        assert bgr is not None
        assert bgr.shape[0] > bgr.shape[1]
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        faces = detector.detect(rgb)
        assert faces
        b = max(faces, key=lambda f: f.box.width).box
        cues = frame_cues(rgb, (b.x, b.y, b.width, b.height))
        v = decide(cues, T)
        lines.append(f"{name}: screen={v.screen} print={v.print_} {cues}")
    with capsys.disabled():
        print("\nminivision passive cues:\n" + "\n".join(lines))
