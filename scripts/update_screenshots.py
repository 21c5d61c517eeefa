"""Regenerate the README's screenshots (docs/screenshots/) from the browser tests' step
screenshots: run the web tests, then compose, crop and palette-compress the chosen steps.

    uv run python scripts/update_screenshots.py            # runs the web tests first
    uv run python scripts/update_screenshots.py --reuse    # from build/test-artifacts as is

Only steps without a face are used (no camera frame, no card portrait);
tests/test_docs_screenshots.py checks that, and the size cap, on every commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "screenshots"
OUT = ROOT / "docs" / "screenshots"

# The capture page on a phone, left to right.
CAPTURE_ROW = [
    "capture-pass/01-consent.png",
    "capture-pass/03-face-intro.png",
    "capture-print-attack/04-retry.png",
    "capture-pass/05-result.png",
]
CROPS = {  # output name: (source, height kept from the top)
    "console.png": ("console/03-consent-declined.png", 1000),
    "dashboard.png": ("dashboard/02-signed-in.png", 1650),
}


def _save(image: Image.Image, name: str) -> None:
    small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(OUT / name, optimize=True)
    print(f"{name}: {image.size[0]}x{image.size[1]}, {(OUT / name).stat().st_size // 1024} KiB")


def main() -> int:
    global ARTIFACTS
    if "--reuse" in sys.argv:
        ARTIFACTS = ROOT / "build" / "test-artifacts"
        return compose()
    env = {**os.environ, "FACEPROOF_TEST_ARTIFACTS": str(ARTIFACTS)}
    tests = [
        "tests/test_web_capture.py",
        "tests/test_web_console.py",
        "tests/test_web_dashboard.py",
    ]
    command = [sys.executable, "-m", "pytest", "-q", *tests]
    subprocess.run(command, cwd=ROOT, env=env, check=True)  # noqa: S603 - our own tests
    return compose()


def compose() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    shots = [Image.open(ARTIFACTS / name) for name in CAPTURE_ROW]
    height = min(900, max(s.height for s in shots))
    gap = 24
    row = Image.new("RGB", (sum(s.width for s in shots) + gap * (len(shots) - 1), height), "white")
    x = 0
    for shot in shots:
        row.paste(shot.crop((0, 0, shot.width, min(height, shot.height))), (x, 0))
        x += shot.width + gap
    _save(
        row.resize((row.width * 2 // 3, row.height * 2 // 3), Image.Resampling.LANCZOS),
        "capture.png",
    )
    for name, (source, keep) in CROPS.items():
        shot = Image.open(ARTIFACTS / source)
        cropped = shot.crop((0, 0, shot.width, min(keep, shot.height)))
        _save(
            cropped.resize(
                (cropped.width * 3 // 4, cropped.height * 3 // 4), Image.Resampling.LANCZOS
            ),
            name,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
