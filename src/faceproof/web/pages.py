"""Page routes and the static mount. Pages carry no data of their own: the scripts fetch it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

__all__ = ["LOCALES", "STATIC_DIR", "catalogue", "mount_web", "pick_locale"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
LOCALES = ("ko", "en")  # a new language is one more catalogue in i18n/

_templates = Jinja2Templates(directory=_HERE / "templates")

# Same-origin everything; the camera only for this origin; no referrer, so the capture token in
# the page's path never leaves in a Referer header.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@cache
def catalogue(locale: str) -> dict[str, str]:
    """The UI messages of one locale; missing keys fall back to English."""
    english: dict[str, str] = json.loads((_HERE / "i18n" / "en.json").read_text("utf-8"))
    if locale == "en":
        return english
    own: dict[str, str] = json.loads((_HERE / "i18n" / f"{locale}.json").read_text("utf-8"))
    return {**english, **own}


def pick_locale(request: Request) -> str:
    """`?lang=` first, then the browser's Accept-Language, then Korean."""
    asked = request.query_params.get("lang", "")
    if asked in LOCALES:
        return asked
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return "ko"


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    locale = pick_locale(request)
    messages = catalogue(locale)
    response = _templates.TemplateResponse(
        request,
        template,
        {
            "locale": locale,
            "t": messages,
            "messages_json": json.dumps(messages, ensure_ascii=False),
            "other_locales": [code for code in LOCALES if code != locale],
            **context,
        },
    )
    response.headers.update(_PAGE_HEADERS)
    return response


router = APIRouter(include_in_schema=False)


@router.get("/v1/capture/{token}", response_class=HTMLResponse)
def capture_page(request: Request, token: str) -> HTMLResponse:
    """The one-time capture URL opens this page; its script reads the token from the path."""
    del token  # checked by the API calls the page makes, not here: the page itself is static
    return _page(request, "capture.html", page="capture")


@router.get("/console", response_class=HTMLResponse)
def console_page(request: Request) -> HTMLResponse:
    return _page(request, "console.html", page="console")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request) -> HTMLResponse:
    return _page(request, "dashboard.html", page="dashboard")


@router.get("/transparency", response_class=HTMLResponse)
def transparency_page(request: Request) -> HTMLResponse:
    return _page(request, "transparency.html", page="transparency")


@router.get("/", response_class=HTMLResponse)
def home_page(request: Request) -> HTMLResponse:
    return _page(request, "home.html", page="home")


def mount_web(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
