"""The operator dashboard and the transparency page in a real browser (Debian's Chromium).

The service runs on loopback with sessions made through its API (declined consents in two
stores and channels, a card and a genuine selfie: review) and liveness-reject attempt rows
written to its database. The dashboard signs in with the admin key (a wrong key first), draws
its uPlot charts under the page's strict CSP, fills its tables, pages through the audit log and
shows the models and threshold in force; the transparency page shows the calibration's
threshold in Korean and English. axe-core finds no serious or critical WCAG 2.1 A/AA violation
on either page. Screenshots go to build/test-artifacts/{dashboard,transparency}/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_support import (
    Shots,
    Site,
    accessibility_violations,
    chromium,
    needs_chromium,
    running_site,
)
from conftest import Images, make_card
from faceproof.comparison import FaceComparer
from faceproof.reasons import ReasonCode, describe
from faceproof.storage.db import Database
from faceproof.storage.models import Attempt

pytestmark = needs_chromium

CALIBRATION = Path(__file__).parents[1] / "src/faceproof/faces/calibration.json"
WIDE = (1280, 900)


def _capture(site: Site, session: dict[str, Any], step: str, **kwargs: Any) -> dict[str, Any]:
    r = httpx.post(f"{session['capture_url']}/{step}", timeout=60, **kwargs)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, comparer: FaceComparer, images: Images
) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("dashboard-site")
    with running_site(tmp_path, comparer, None) as site:
        for i in range(8):
            store, channel = ("jamsil-02", "in_store") if i % 2 else ("gangnam-01", "online")
            declined = site.new_session(store_id=store, channel=channel)
            _capture(site, declined, "consent", json={"choice": "decline"})
        selfie = site.new_session()
        _capture(site, selfie, "consent", json={"choice": "accept"})
        today = (datetime.now(UTC) + timedelta(hours=9)).date()
        card = make_card(today=today).jpeg
        _capture(site, selfie, "document", files={"image": ("card.jpg", card, "image/jpeg")})
        photo = {"image": ("selfie.jpg", images.example_b, "image/jpeg")}
        assert _capture(site, selfie, "selfie", files=photo)["outcome"] == "review"
        pad = site.new_session(store_id="jamsil-02")
        database = Database(f"sqlite:///{site.data_dir / 'faceproof.db'}")
        try:
            with database.session() as db:
                for number, codes in enumerate(
                    (["planar_motion"], ["screen_detected"], ["planar_motion"]), start=1
                ):
                    db.add(
                        Attempt(
                            session_id=pad["id"],
                            number=number,
                            outcome="retry",
                            reasons=codes,
                            created_at=datetime.now(UTC),
                        )
                    )
        finally:
            database.close()
        yield site


def _admin(site: Site, path: str) -> dict[str, Any]:
    r = httpx.get(f"{site.base}{path}", headers={"Authorization": f"Bearer {site.admin_key}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _column(page: Any, table: str, index: int = 0) -> list[str]:
    cells = page.locator(f"#{table} tbody tr > :nth-child({index + 1})")
    return [text.strip() for text in cells.all_text_contents()]  # hidden ones too


def _watch_errors(page: Any) -> list[str]:
    """Uncaught exceptions and console errors (a CSP refusal is one); the browser's own
    request for /favicon.ico (there is none) aside."""
    errors: list[str] = []

    def console(msg: Any) -> None:
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{msg.text} @ {msg.location.get('url')}")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", console)
    return errors


def test_the_dashboard_signs_in_and_draws_the_tenants_figures(site: Site) -> None:
    shots = Shots("dashboard")
    summary = _admin(site, "/v1/dashboard/summary?days=30")
    first_page = _admin(site, "/v1/audit?limit=20")
    assert first_page["next_before"] is not None  # more than one page to walk
    with chromium(site.camera, viewport=WIDE) as browser:
        page = browser.new_page()
        errors = _watch_errors(page)
        response = page.goto(f"{site.base}/dashboard")
        assert "script-src 'self';" in response.headers["content-security-policy"]
        page.get_by_role("heading", name="운영자 대시보드", level=1).wait_for()
        shots(page, "sign-in")
        assert accessibility_violations(page) == []

        page.get_by_label("관리자 API 키").fill("fpk_wrong_key")
        page.get_by_role("button", name="로그인").click()
        page.locator("#dash-signin-error:not(:empty)").wait_for()
        assert page.is_visible("#dash-signin-error")
        assert not page.is_visible("#dash-workspace")
        errors.clear()  # the browser logs the refused request (401) as a console error

        page.get_by_label("관리자 API 키").fill(site.admin_key)
        page.keyboard.press("Enter")  # the form submits from the keyboard
        page.locator('body[data-loaded="true"]').wait_for(timeout=20_000)
        assert page.evaluate("document.activeElement.id") == "h-dash-decisions"
        assert not page.is_visible("#dash-signin")
        stored = page.evaluate("[sessionStorage.length, localStorage.length, document.cookie]")
        assert stored == [1, 0, ""]  # the key lives in this tab's sessionStorage only

        for chart in ("chart-decisions", "chart-liveness", "chart-latency"):
            assert page.locator(f"#{chart} .uplot canvas").count() == 1, chart
        assert page.locator("#chart-decisions .u-legend").is_visible()

        totals = page.locator("#dash-totals li")
        assert totals.count() == 4
        assert page.inner_text('#dash-totals li[data-outcome="alternative_required"]').endswith(
            f": {summary['totals']['alternative_required']}"
        )
        assert summary["totals"] == {"pass": 0, "review": 1, "fail": 0, "alternative_required": 8}
        assert _column(page, "table-channel") == ["온라인", "매장"]
        assert _column(page, "table-channel", 1) == ["5", "4"]
        assert _column(page, "table-store") == ["gangnam-01", "jamsil-02"]
        assert _column(page, "table-liveness") == [
            "사진이나 화면이 움직임 (평면 움직임)",
            "화면 재생",
        ]
        assert _column(page, "table-liveness", 2) == ["2", "1"]
        routes = _column(page, "table-latency")
        assert "POST /v1/capture/{token}/consent" in routes
        assert "POST /v1/capture/{token}/selfie" in routes
        days = _column(page, "table-decisions")
        assert len(days) == 30
        assert days[-1] == (datetime.now(UTC) + timedelta(hours=9)).date().isoformat()
        last = page.locator("#table-decisions tbody tr:last-child td").all_text_contents()
        assert last == ["0", "1", "0", "8"]

        threshold = json.loads(CALIBRATION.read_text("utf-8"))["threshold"]
        assert page.inner_text("#dash-threshold").startswith(f"{threshold:.3f}")
        assert page.inner_text("#dash-fmr").startswith("1e-4")
        models = _column(page, "table-models")
        assert len(models) == 6
        assert "mediapipe-iris-landmark" in models  # the eyelids a blink is judged on

        ids = [str(e["id"]) for e in first_page["entries"]]
        assert _column(page, "table-audit") == ids
        assert page.inner_text("#dash-chain") == "해시 체인 확인됨: 변경된 항목이 없습니다."
        shots(page, "signed-in")
        assert accessibility_violations(page) == []
        page.set_viewport_size({"width": 360, "height": 800})  # a phone: charts shrink
        page.wait_for_timeout(600)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shots(page, "phone")
        assert accessibility_violations(page) == []
        page.set_viewport_size({"width": WIDE[0], "height": WIDE[1]})

        page.get_by_role("button", name="이전 항목").focus()
        page.keyboard.press("Enter")
        older = _admin(site, f"/v1/audit?limit=20&before={first_page['next_before']}")
        page.locator(f"#table-audit tbody th:text-is('{older['entries'][0]['id']}')").wait_for()
        assert _column(page, "table-audit") == [str(e["id"]) for e in older["entries"]]
        assert page.inner_text("#dash-audit-page") == "2쪽"
        page.get_by_role("button", name="최근 항목").click()
        page.locator(f"#table-audit tbody th:text-is('{ids[0]}')").wait_for()
        shots(page, "audit-newest")

        page.get_by_label("기간", exact=True).select_option("7")
        page.get_by_role("button", name="보기").click()
        page.locator("#table-decisions tbody tr:nth-child(8)").wait_for(state="detached")
        assert len(_column(page, "table-decisions")) == 7

        page.reload()  # the tab keeps the key: signed in again without asking
        page.locator('body[data-loaded="true"]').wait_for(timeout=20_000)
        assert not page.is_visible("#dash-signin")
        page.get_by_role("button", name="로그아웃").click()
        page.get_by_label("관리자 API 키").wait_for()
        assert page.evaluate("sessionStorage.length") == 0
        assert errors == []


def test_a_sessions_key_cannot_open_the_dashboard(site: Site) -> None:
    with chromium(site.camera, viewport=WIDE) as browser:
        page = browser.new_page()
        page.goto(f"{site.base}/dashboard?lang=en")
        page.get_by_label("Admin API key").fill(site.key)
        page.get_by_role("button", name="Sign in").click()
        alert = page.locator("#dash-signin-error:not(:empty)")
        alert.wait_for()
        assert alert.inner_text() == describe(ReasonCode.FORBIDDEN_SCOPE).message_en
        assert not page.is_visible("#dash-workspace")
        assert page.evaluate("sessionStorage.length") == 0  # a refused key is not kept


def test_the_transparency_page_in_korean_and_english(site: Site) -> None:
    shots = Shots("transparency")
    threshold = json.loads(CALIBRATION.read_text("utf-8"))["threshold"]
    with chromium(site.camera, viewport=WIDE) as browser:
        page = browser.new_page()
        errors = _watch_errors(page)
        response = page.goto(f"{site.base}/transparency")
        assert "script-src 'self';" in response.headers["content-security-policy"]
        page.locator('body[data-loaded="true"]').wait_for(timeout=20_000)
        assert page.get_by_role("heading", level=1).inner_text() == "faceproof의 작동 방식과 정확도"
        assert page.inner_text("#tr-threshold").startswith(f"{threshold:.3f}")
        assert page.inner_text("#tr-fmr").startswith("1e-4")
        assert "90일" in page.inner_text("#tr-retention")
        assert len(_column(page, "tr-table-models")) == 6
        assert "교차 검증" in " ".join(_column(page, "tr-table-accuracy", 3))
        assert "5.7%" in " ".join(_column(page, "tr-table-accuracy", 1))
        assert len(_column(page, "tr-table-checks")) == 8
        assert page.locator("#tr-documents li").count() == 6
        shots(page, "ko")
        assert accessibility_violations(page) == []

        page.get_by_role("link", name="English").click()
        page.locator('html[lang="en"] body[data-loaded="true"]').wait_for()
        heading = page.get_by_role("heading", level=1).inner_text()
        assert heading == "How faceproof works, and how well"
        assert "Cross-validated" in " ".join(_column(page, "tr-table-accuracy", 3))
        assert "docs/model-card.md" in page.inner_text("#tr-docs")
        shots(page, "en")
        assert accessibility_violations(page) == []
        page.set_viewport_size({"width": 360, "height": 800})  # a phone: the page reflows
        shots(page, "en-phone")
        assert accessibility_violations(page) == []
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, width
        assert errors == []
