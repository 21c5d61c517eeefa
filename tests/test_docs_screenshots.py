"""The README's screenshots (docs/screenshots/, made by scripts/update_screenshots.py) are the only
images in git: small PNGs of the pages, with no face in any of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from faceproof.examples import example_portrait
from faceproof.faces.detector import YuNetDetector

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TILE, STEP = 480, 240  # YuNet shrinks images over 640 px: look at overlapping tiles instead


def _faces(rgb: npt.NDArray[np.uint8], detector: YuNetDetector) -> list[float]:
    height, width = rgb.shape[:2]
    scores = []
    for top in range(0, max(1, height - TILE // 2), STEP):
        for left in range(0, max(1, width - TILE // 2), STEP):
            tile = np.ascontiguousarray(rgb[top : top + TILE, left : left + TILE])
            scores += [d.confidence for d in detector.detect(tile)]
    return scores


def test_the_tiling_finds_a_face_where_there_is_one() -> None:
    """The check below could fail: a page-like canvas with a small portrait on it is caught."""
    page = np.full((1400, 900, 3), 245, np.uint8)
    portrait = np.asarray(example_portrait().resize((160, 160)), np.uint8)
    page[900:1060, 500:660] = portrait
    assert max(_faces(page, YuNetDetector()), default=0.0) > 0.6


def test_screenshots_are_small_pngs_without_faces() -> None:
    shots = sorted(SHOTS.glob("*"))
    assert shots, "README screenshots missing: run scripts/update_screenshots.py"
    detector = YuNetDetector()
    for path in shots:
        assert path.suffix == ".png", path
        assert path.stat().st_size <= 300 * 1024, path
        with Image.open(path) as image:
            assert image.format == "PNG", path
            rgb = np.asarray(image.convert("RGB"), np.uint8)
        assert max(_faces(rgb, detector), default=0.0) < 0.6, path
