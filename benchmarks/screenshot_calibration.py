"""Calibrate and check `documents.screenshot` (`card_screenshot`) on synthetic cards.

    uv run python benchmarks/screenshot_calibration.py [--photos 240] [--mild 60]

Camera photos, which must all pass:
- `photo`: `photograph(render_specimen(type, seed=5000+i), seed=9000+i)`, types balanced;
- `photo_q70_resaved`: the same at the generator's lowest JPEG quality (70), then saved again
  at quality 85 (as the API tests upload them): the hardest case for the noise measure;
- `mild_noise`: seeds whose own draws give the generator's mildest noise (sigma < 2.5 of its
  2-6 range) and sharpest blur, at JPEG quality 70, re-saved at 85;
- `blurred`: photos blurred afterwards (Gaussian radius 2; they still read).

Digital images, which must be refused: flat renders on a white / grey / black canvas, the
same shared through a chat app (scaled 0.5-0.9, JPEG 60-90), turned 4 degrees on a grey
canvas, phone screenshots (light / dark, PNG and JPEG 70), and renders filling the frame
(raw, and shared). Screens: the card on an LCD of 500-1400 px (RGB sub-pixel grid), then
photographed. Prints each measure's range per group and how many were refused.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from faceproof.documents import DocumentType
from faceproof.documents.errors import DocumentError
from faceproof.documents.locate import locate_card
from faceproof.documents.read import _FALLBACK_CODES, _whole_frame
from faceproof.documents.screenshot import frame_flat_share, measure_card, refuse_screenshot
from faceproof.documents.specimen import photograph, render_specimen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_documents_screenshot import (
    flat_canvas,
    on_screen,
    phone_screenshot,
    shared_through_chat,
)

TODAY = date(2026, 11, 27)
TYPES = list(DocumentType)


def drawn_blur_noise(seed: int, size: tuple[int, int] = (1600, 1200)) -> tuple[float, float]:
    """The blur and noise sigmas `photograph(seed=seed)` draws (its draws replayed in order)."""
    gen = np.random.default_rng(seed)
    width, height = size
    gen.uniform(0.55, 0.75)
    gen.uniform(-0.08, 0.08)
    gen.uniform(-0.08, 0.08)
    gen.uniform(-8, 8)
    gen.uniform(-0.05, 0.05, (4, 2))
    gen.uniform(30, 140, 3)
    gen.normal(0, 12, (height // 16 + 1, width // 16 + 1))
    gen.uniform(0, 2 * np.pi)
    gen.uniform(0.08, 0.22)
    return float(gen.uniform(0.6, 1.4)), float(gen.uniform(2, 6))


def resaved(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def cut_off(image: Image.Image, corners: tuple[tuple[float, float], ...]) -> Image.Image:
    """The photo cropped through the card, 70 % of the way across it: the card runs off the
    right edge (`card_cut_off`, where only the whole frame can be measured)."""
    pts = np.asarray(corners)
    right = pts[:, 0].min() + 0.7 * (pts[:, 0].max() - pts[:, 0].min())
    return image.crop((0, 0, int(right), image.height))


def as_png(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def verdict(image: Image.Image) -> tuple[str, dict[str, float]]:
    """('pass' | a reason code, measures) as `read_document` sees the image up to its
    screenshot check: the card's outline, else the whole frame when it has the card's shape,
    else the locate error (`read_document` would then look for a passport MRZ)."""
    rgb = np.asarray(image.convert("RGB"))
    try:
        quad = locate_card(rgb)
    except DocumentError as exc:
        frame = _whole_frame(rgb) if exc.code in _FALLBACK_CODES else None
        if frame is None:
            return exc.code.value, {}
        values = {"frame_flat": frame_flat_share(rgb)}
        try:
            refuse_screenshot(rgb, frame.corners, whole_frame=True)
        except DocumentError as inner:
            return inner.code.value, values
        return "pass", values
    m = measure_card(rgb, quad.corners)
    values = {"flat": m.flat_share, "tilt": m.tilt, "moire": m.moire}
    if m.background_flat is not None:
        values["background"] = m.background_flat
    try:
        refuse_screenshot(rgb, quad.corners)
    except DocumentError as exc:
        return exc.code.value, values
    return "pass", values


def camera_photos(n: int, n_mild: int) -> Iterator[tuple[str, Image.Image]]:
    for i in range(n):
        spec = render_specimen(TYPES[i % 6], seed=5000 + i, today=TODAY)
        yield "photo", photograph(spec, seed=9000 + i).image
        low = photograph(spec, seed=9000 + i, jpeg_quality=(70, 70)).image
        yield "photo_q70_resaved", resaved(low, 85)
        if i % 4 == 0:
            photo = photograph(spec, seed=9000 + i)
            yield "blurred", photo.image.filter(ImageFilter.GaussianBlur(2))
            yield "photo_cut_off", cut_off(photo.image, photo.corners)
            yield "photo_q70_cut_off", resaved(cut_off(low, photo.corners), 85)
    mild = [s for s in range(20000, 40000) if drawn_blur_noise(s)[1] < 2.5][:n_mild]
    for i, seed in enumerate(mild):
        spec = render_specimen(TYPES[i % 6], seed=seed, today=TODAY)
        photo = photograph(spec, seed=seed, jpeg_quality=(70, 70))
        yield "mild_noise", resaved(photo.image, 85)
        yield "mild_noise_cut_off", resaved(cut_off(photo.image, photo.corners), 85)


def digital_images() -> Iterator[tuple[str, Image.Image]]:
    scales_qualities = [(0.5, 60), (0.6, 70), (0.75, 75), (0.9, 90)]
    for i, doc_type in enumerate(TYPES):
        card = render_specimen(doc_type, seed=7000 + i, today=TODAY).image
        for colour in ((255, 255, 255), (128, 128, 128), (0, 0, 0)):
            canvas = flat_canvas(card, colour=colour)
            yield "canvas", canvas
            for scale, quality in scales_qualities:
                yield "canvas_shared", shared_through_chat(canvas, scale=scale, quality=quality)
        yield "canvas_turned", flat_canvas(card, colour=(128, 128, 128), angle=4.0)
        for dark in (False, True):
            shot = phone_screenshot(card, dark=dark)
            yield "phone", as_png(shot)
            yield "phone_jpeg70", resaved(shot, 70)
        yield "frame_filling", card
        for scale, quality in scales_qualities:
            yield "frame_filling_shared", shared_through_chat(card, scale=scale, quality=quality)


def screen_photos(n: int) -> Iterator[tuple[str, Image.Image]]:
    import dataclasses

    for i in range(n):
        spec = render_specimen(TYPES[i % 6], seed=6000 + i, today=TODAY)
        for width in (500, 600, 700, 850, 1012, 1200, 1400):
            shown = dataclasses.replace(spec, image=on_screen(spec.image, display_width=width))
            yield f"screen_{width}", photograph(shown, seed=8000 + i).image


def summarise(name: str, groups: Callable[[], Iterator[tuple[str, Image.Image]]]) -> None:
    outcomes: dict[str, list[str]] = defaultdict(list)
    measures: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for group, image in groups():
        outcome, values = verdict(image)
        outcomes[group].append(outcome)
        for key, value in values.items():
            measures[group][key].append(value)
    print(f"## {name}")
    for group, results in outcomes.items():
        counts = {o: results.count(o) for o in sorted(set(results))}
        ranges = "  ".join(
            f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in sorted(measures[group].items())
        )
        print(f"{group:22s} n={len(results):3d}  {counts}  {ranges}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=240)
    parser.add_argument("--mild", type=int, default=60)
    parser.add_argument("--screens", type=int, default=12)
    args = parser.parse_args()
    summarise("camera photos (must pass)", lambda: camera_photos(args.photos, args.mild))
    summarise("digital images (must be refused)", digital_images)
    summarise("photos of screens (should be refused)", lambda: screen_photos(args.screens))


if __name__ == "__main__":
    main()
