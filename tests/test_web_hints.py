"""The capture page's live hints (static/js/camera.js), run in the browser on made-up frame
statistics: which hint each situation gets, and when the card is taken by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_support import chromium, dark_frames, free_port, needs_chromium, serve_app, write_y4m

pytestmark = needs_chromium

_RUN = """async (cases) => {
  const { CameraHints } = await import('/static/js/camera.js');
  const grey = (v) => new Float32Array(64).fill(v);
  return cases.map(([kind, stats, faces, width, frames]) => {
    const hints = new CameraHints();
    let out;
    for (let i = 0; i < frames; i += 1) {
      const s = { ...stats, grey: grey(stats.mean + (stats.shake ? (i % 2) * 40 : 0)) };
      out = kind === 'card' ? hints.card(s) : hints.face(s, faces, width);
    }
    return out;
  });
}"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from faceproof.api import create_app
    from faceproof.settings import Settings

    tmp: Path = tmp_path_factory.mktemp("hints")
    port = free_port()
    app = create_app(Settings(data_dir=tmp / "data", public_base_url=f"http://127.0.0.1:{port}"))
    camera = tmp / "camera.y4m"
    write_y4m(camera, dark_frames())
    with serve_app(app, port) as base, chromium(camera) as browser:
        tab = browser.new_page()
        tab.goto(f"{base}/console")
        yield tab


LIT = {"mean": 120, "glare": 0.0, "sharpness": 14}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (["card", {**LIT, "mean": 20}, None, 1, 1], {"key": "hint_too_dark", "capture": False}),
        (["card", {**LIT, "glare": 0.1}, None, 1, 1], {"key": "hint_glare", "capture": False}),
        (
            ["card", {**LIT, "sharpness": 3}, None, 1, 1],
            {"key": "hint_move_closer", "capture": False},
        ),
        (
            ["card", {**LIT, "shake": True}, None, 1, 6],
            {"key": "hint_hold_still", "capture": False},
        ),
        (
            ["card", LIT, None, 1, 2],
            {"key": "hint_hold_still", "capture": False},
        ),  # not yet a second
        (["card", LIT, None, 1, 5], {"key": "hint_good", "capture": True}),
        (["face", {**LIT, "mean": 30}, None, 640, 1], {"key": "hint_face_dark"}),
        (["face", LIT, None, 640, 1], {"key": "hint_face_good"}),  # no detector: light only
        (["face", LIT, [], 640, 1], {"key": "hint_face_none"}),
        (["face", LIT, [{"boundingBox": {"width": 60}}] * 2, 640, 1], {"key": "hint_face_many"}),
        (["face", LIT, [{"boundingBox": {"width": 60}}], 640, 1], {"key": "hint_face_closer"}),
        (["face", LIT, [{"boundingBox": {"width": 500}}], 640, 1], {"key": "hint_face_back"}),
        (["face", LIT, [{"boundingBox": {"width": 220}}], 640, 1], {"key": "hint_face_good"}),
    ],
)
def test_hint(page: Any, case: list[Any], expected: dict[str, Any]) -> None:
    assert page.evaluate(_RUN, [case]) == [expected]
