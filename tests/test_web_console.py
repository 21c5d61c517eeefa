"""The clerk console in a real browser: sign in with a store's key, start a verification, show
the capture QR, watch the customer's session live, then record a manual abstract check. The
customer's side runs in a second tab of the same browser (the capture page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_support import (
    Shots,
    Site,
    accessibility_violations,
    chromium,
    needs_chromium,
    running_site,
)
from faceproof.comparison import FaceComparer
from faceproof.liveness import LivenessEngine

pytestmark = needs_chromium


@pytest.fixture
def site(tmp_path: Path, comparer: FaceComparer, liveness_engine: LivenessEngine) -> Iterator[Site]:
    with running_site(tmp_path, comparer, liveness_engine) as running:
        yield running


def _sign_in(page: Any, site: Site, key: str) -> None:
    page.goto(f"{site.base}/console?lang=en")
    page.get_by_label("Store API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#workspace").wait_for()


def test_a_clerk_watches_a_customer_decline_then_checks_an_abstract(site: Site) -> None:
    shots = Shots("console")
    with chromium(site.camera, viewport=(1100, 900)) as browser:
        clerk = browser.new_page()
        clerk.goto(f"{site.base}/console?lang=en")
        assert accessibility_violations(clerk) == []
        shots(clerk, "sign-in")
        _sign_in(clerk, site, site.store_key)
        assert "gangnam-01" in clerk.inner_text("#whoami")
        assert clerk.get_by_label("Store", exact=True).input_value() == "gangnam-01"
        assert clerk.get_by_label("Store", exact=True).get_attribute("readonly") is not None

        clerk.get_by_role("button", name="Start verification").click()
        clerk.locator("#current").wait_for()
        qr = clerk.locator("#qr")
        qr.wait_for()
        clerk.wait_for_function("() => document.querySelector('#qr').naturalWidth > 100")
        session_id = clerk.inner_text("#session-id")
        assert session_id.startswith("ses_")
        assert clerk.inner_text("#session-state") == "waiting for the customer's consent"
        shots(clerk, "session-started")
        assert accessibility_violations(clerk) == []

        # The customer opens the link (here: a second tab) and declines the face check.
        capture_url = clerk.get_attribute("#capture-link", "href")
        customer = browser.new_page()
        customer.goto(capture_url)
        customer.locator('body[data-step="consent"]').wait_for(state="attached")
        customer.get_by_role("button", name="아니요, 다른 방법으로 할게요").click()

        # The console hears it over the event stream, without a reload.
        clerk.locator("#decision-value").filter(has_text="alternative required").wait_for()
        assert "declined" in clerk.inner_text("#decision-reasons").lower()
        shots(clerk, "consent-declined")

        clerk.get_by_role("button", name="Manual check instead (abstract)").click()
        clerk.get_by_label("Your clerk ID").fill("clerk-7")
        clerk.get_by_label("Abstract's document serial number").fill("2026-1127-0042")
        clerk.get_by_label("Registration number on the abstract").fill("900101-1234568")
        clerk.get_by_label("The person in front of me is the holder of this abstract").check()
        shots(clerk, "manual-check")
        clerk.get_by_role("button", name="Record the manual check").click()
        clerk.locator("#decision-value").filter(has_text="pass").wait_for()
        new_id = clerk.inner_text("#session-id")
        assert new_id != session_id  # the declined session is closed: a new one was opened
        shots(clerk, "manual-pass")
        # Never a face or a card on the clerk's screen: the only image is the QR code.
        assert clerk.locator("video").count() == 0
        assert clerk.locator("img").count() == 1

    first, second = site.session(session_id), site.session(new_id)
    assert first["decision"]["decision"] == "alternative_required"
    assert second["decision"]["decision"] == "pass"
    assert second["channel"] == "in_store"
    assert second["store_id"] == "gangnam-01"


def test_a_wrong_key_is_refused_with_a_reason(site: Site) -> None:
    with chromium(site.camera) as browser:
        page = browser.new_page()
        page.goto(f"{site.base}/console?lang=en")
        page.get_by_label("Store API key").fill("fpk_0000_not-a-key")
        page.get_by_role("button", name="Sign in").click()
        page.locator("#signin-error").filter(has_text="API key").wait_for()
        assert page.is_hidden("#workspace")


def test_consent_and_result_pages_pass_an_accessibility_audit(site: Site) -> None:
    with chromium(site.camera) as browser:
        page = browser.new_page()
        for lang in ("ko", "en"):
            session = site.new_session()
            page.goto(f"{session['capture_url']}?lang={lang}")
            page.locator('body[data-step="consent"]').wait_for(state="attached")
            assert accessibility_violations(page) == [], lang
            page.locator("[data-action=consent-decline]").click()
            page.locator('body[data-step="result"]').wait_for(state="attached")
            assert accessibility_violations(page) == [], lang
            assert page.is_visible("#alternatives")
