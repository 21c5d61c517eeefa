"""The applicant's capture page in a real browser (Debian's Chromium, fake camera).

Three journeys against the service on loopback: a bona fide-like 3D head performing the server's
challenge passes end to end against a specimen card made for the same face; a tilted print of
that face is rejected by liveness with its reason shown; declining consent leads to the
alternative path. The card goes in through the page's file picker; the face through the camera
(a Y4M clip written when the page asks for its challenge, before it opens the camera). The
challenge issuer draws from a seeded RNG so that it asks for actions the rendered head can do.
Screenshots of every step go to build/test-artifacts/ (FACEPROOF_TEST_ARTIFACTS).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_support import Shots, Site, chromium, needs_chromium, running_site, write_y4m
from conftest import Card, make_card
from faceproof.comparison import FaceComparer
from faceproof.liveness import LivenessEngine
from test_api import _MAGIC, _tmp_snapshot

pytestmark = needs_chromium


@pytest.fixture
def site(tmp_path: Path, comparer: FaceComparer, liveness_engine: LivenessEngine) -> Iterator[Site]:
    # Uploads must be encrypted to the session's key: the page has to do it, or nothing passes.
    with running_site(tmp_path, comparer, liveness_engine, require_encrypted_uploads=True) as s:
        yield s


def _card_today() -> Card:
    """A resident registration card around the example portrait, valid today in Korea."""
    return make_card(today=(datetime.now(UTC) + timedelta(hours=9)).date())


@pytest.fixture(scope="module")
def card_jpeg() -> bytes:
    return _card_today().jpeg


def _wait_step(page: Any, step: str, timeout_s: float = 30) -> None:
    # A locator, not wait_for_function: the page's CSP forbids evaluating strings.
    page.locator(f'body[data-step="{step}"]').wait_for(state="attached", timeout=timeout_s * 1000)


def _camera_plays(site: Site, page: Any, frames: list[Any]) -> None:
    """When the page asks for its challenge, write `frames(challenge)` as the camera's clip,
    then hand the page the server's real answer: the camera opens after it."""

    def handle(route: Any) -> None:
        response = route.fetch()
        challenge = response.json()
        write_y4m(site.camera, frames(challenge))
        route.fulfill(response=response)

    page.route("**/challenge", handle)


def _head_clip(scene_kit: Any) -> Any:
    from faceproof.liveness.synthetic import bona_fide_clip, challenge_motion

    def frames(challenge: dict[str, Any]) -> list[Any]:
        actions = [a["action"] for a in challenge["actions"]]
        windows = [(a["start_s"], a["end_s"]) for a in challenge["actions"]]
        motion = challenge_motion(actions, windows)
        seconds = challenge["record_seconds"] + 3.0  # the file loops: never wrap mid-recording
        clip = bona_fide_clip(scene_kit, "challenge", seconds=seconds, motion=motion)
        return list(clip.frames)

    return frames


def _print_clip(scene_kit: Any) -> Any:
    from faceproof.liveness.synthetic import attack_clip

    def frames(challenge: dict[str, Any]) -> list[Any]:
        seconds = challenge["record_seconds"] + 3.0
        return list(attack_clip(scene_kit, "print_tilt", seed=5, seconds=seconds).frames)

    return frames


def _to_face_step(site: Site, page: Any, shots: Shots, card_jpeg: bytes) -> dict[str, Any]:
    session = site.new_session()
    page.goto(session["capture_url"])
    _wait_step(page, "consent")
    shots(page, "consent")
    page.get_by_role("button", name="네, 얼굴로 확인할게요").click()
    _wait_step(page, "document")
    shots(page, "document")
    page.set_input_files(
        "#doc-file", files=[{"name": "card.jpg", "mimeType": "image/jpeg", "buffer": card_jpeg}]
    )
    _wait_step(page, "face-intro", timeout_s=60)
    shots(page, "face-intro")
    return session


def test_a_live_head_completes_the_flow_to_pass(
    site: Site, scene_kit: Any, card_jpeg: bytes
) -> None:
    shots = Shots("capture-pass")
    before = _tmp_snapshot()
    with chromium(site.camera) as browser:
        page = browser.new_page()
        uploads: list[bytes] = []  # what a proxy between the page and the engine would see

        def proxy(route: Any) -> None:
            uploads.append(route.request.post_data_buffer or b"")
            route.continue_()

        page.route("**/document", proxy)
        page.route("**/clip", proxy)
        session = _to_face_step(site, page, shots, card_jpeg)
        _camera_plays(site, page, _head_clip(scene_kit))
        page.get_by_role("button", name="시작").click()
        _wait_step(page, "face")
        page.wait_for_timeout(2500)
        shots(page, "face-recording")
        _wait_step(page, "result", timeout_s=90)
        shots(page, "result")
        assert page.evaluate("document.body.dataset.outcome") == "pass", page.inner_text("main")
        assert page.inner_text("#h-result") == "본인 확인이 완료되었습니다"
    sealed = [body for body in uploads if b"application/jose" in body]
    assert len(sealed) == 2  # the card and the clip, each a JWE to the session's key
    for body in sealed:
        # The file part is compact-JWE text (base64url and dots): no image or video bytes.
        part = body.split(b"application/jose\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
        assert re.fullmatch(rb"[A-Za-z0-9_\-.]+", part), part[:80]
        assert part.count(b".") == 4
        assert not any(magic in body for magic in _MAGIC.values())
    decided = site.session(session["id"])
    assert decided["decision"]["decision"] == "pass"
    assert "liveness_passed" in decided["decision"]["reasons"]
    assert [a["outcome"] for a in decided["attempts"]] == ["pass"]
    # Nothing of the card photo or the browser's WebM clip stayed behind: not in the service's
    # data directory (the SQLite database, the key), not in new files in the temp directory.
    stored = b"".join(p.read_bytes() for p in site.data_dir.rglob("*") if p.is_file())
    assert stored
    for kind, magic in _MAGIC.items():
        assert magic not in stored, kind
    new_files = [p for p in _tmp_snapshot() if p not in before]
    for path in new_files:
        head = path.read_bytes()[:64] if path.exists() else b""
        assert not any(m in head for m in _MAGIC.values()), path


def test_a_tilted_print_is_rejected_with_its_reason_shown(
    site: Site, scene_kit: Any, card_jpeg: bytes
) -> None:
    shots = Shots("capture-print-attack")
    with chromium(site.camera) as browser:
        page = browser.new_page()
        session = _to_face_step(site, page, shots, card_jpeg)
        _camera_plays(site, page, _print_clip(scene_kit))
        page.get_by_role("button", name="시작").click()
        _wait_step(page, "retry", timeout_s=90)
        shots(page, "retry")
        items = "#retry-reasons li"
        codes = page.eval_on_selector_all(items, "els => els.map(e => e.dataset.code)")
        texts = page.eval_on_selector_all(items, "els => els.map(e => e.textContent)")
        liveness_codes = {"planar_motion", "motion_insufficient", "challenge_not_followed"}
        assert set(codes) & liveness_codes, codes
        assert all(texts), texts
        assert "남은 횟수: 2" in page.inner_text("#retry-left")
    polled = site.session(session["id"])
    assert polled["decision"] is None  # a retry: the session goes on
    assert [a["outcome"] for a in polled["attempts"]] == ["retry"]


def test_declining_consent_leads_to_the_alternative_path(site: Site) -> None:
    shots = Shots("capture-decline")
    with chromium(site.camera) as browser:
        page = browser.new_page()
        session = site.new_session()
        page.goto(session["capture_url"])
        _wait_step(page, "consent")
        page.get_by_role("button", name="아니요, 다른 방법으로 할게요").click()
        _wait_step(page, "result")
        shots(page, "alternative")
        assert page.is_visible("#alternatives")
        assert "모바일 신분증" in page.inner_text("#alternatives")
    decided = site.session(session["id"])
    assert decided["decision"]["decision"] == "alternative_required"
    assert decided["decision"]["reasons"] == ["consent_declined"]


def test_the_card_is_taken_by_the_camera_when_sharp_and_still(site: Site) -> None:
    """The camera path of the card step: the fake camera shows a photographed card (1600x1200,
    as a phone's rear camera would); the page's hints see it sharp, lit and still, take the
    photo by itself and the service accepts the card."""
    import cv2
    import numpy as np

    card = cv2.cvtColor(cv2.imdecode(np.frombuffer(_card_today().jpeg, np.uint8), 1), 4)
    write_y4m(site.camera, [card] * 15)
    shots = Shots("capture-card-camera")
    with chromium(site.camera) as browser:
        page = browser.new_page()
        session = site.new_session()
        page.goto(session["capture_url"] + "?lang=en")
        _wait_step(page, "consent")
        page.get_by_role("button", name="Yes, check with my face").click()
        _wait_step(page, "document")
        page.wait_for_timeout(800)
        shots(page, "card-in-view")
        _wait_step(page, "face-intro", timeout_s=60)  # no click: auto-capture
        shots(page, "card-accepted")
    polled = site.session(session["id"])
    assert polled["state"] == "awaiting_selfie"
    assert polled["decision"] is None


def test_the_page_offers_more_time_before_the_link_expires(
    tmp_path: Path, comparer: FaceComparer, liveness_engine: LivenessEngine
) -> None:
    """A link with 125 s left: the page warns at 120 s left, and one press extends it."""
    with (
        running_site(tmp_path, comparer, liveness_engine, capture_token_ttl_seconds=125) as site,
        chromium(site.camera) as browser,
    ):
        page = browser.new_page()
        session = site.new_session()
        page.goto(session["capture_url"] + "?lang=en")
        _wait_step(page, "consent")
        warning = page.get_by_role("alertdialog")
        warning.wait_for(timeout=20_000)
        assert "more time" in warning.inner_text()
        Shots("capture-more-time")(page, "warning")
        page.get_by_role("button", name="Yes, give me more time").click()
        warning.wait_for(state="hidden")
        state = httpx.get(f"{session['capture_url']}/state").json()
        left = datetime.fromisoformat(state["token_expires_at"]) - datetime.now(UTC)
        assert left.total_seconds() > 120  # a full 125 s TTL again, from the press
        assert page.is_visible('section[data-step="consent"]')  # nothing else changed
