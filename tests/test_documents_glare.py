"""Glare: a lamp's highlight on the laminate over the portrait or a field is `card_glare`
(retake the photo), and a highlight elsewhere on the card is not a reason to refuse it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from conftest import encode
from faceproof.comparison import FaceComparer
from faceproof.documents import DocumentType
from faceproof.documents.errors import DocumentError
from faceproof.documents.locate import locate_card, rectify
from faceproof.documents.read import (
    GLARE_MAX_SHARE,
    ID1_SIZE,
    PORTRAIT_BOXES,
    TD3_SIZE,
    _refuse_glare,
    _washed_out,
)
from faceproof.documents.specimen import photograph, render_specimen
from faceproof.reasons import ReasonCode
from test_api import Env, _consent, _make_env, assert_problem
from test_storage import database_url

TODAY = date(2026, 5, 1)


def _card(doc_type: DocumentType, seed: int, glare: tuple[float, float] | None) -> np.ndarray:
    photo = photograph(render_specimen(doc_type, seed=seed, today=TODAY), seed=seed, glare=glare)
    pixels = np.asarray(photo.image)
    size = TD3_SIZE if doc_type is DocumentType.PASSPORT else ID1_SIZE
    return rectify(pixels, locate_card(pixels).corners, size=size)


def _portrait_centre(doc_type: DocumentType) -> tuple[float, float]:
    box = PORTRAIT_BOXES[doc_type]
    width, height = TD3_SIZE if doc_type is DocumentType.PASSPORT else ID1_SIZE
    return (box.x + box.width / 2) / width, (box.y + box.height / 2) / height


@pytest.mark.parametrize("doc_type", list(DocumentType))
def test_glare_over_the_portrait_is_refused(doc_type: DocumentType) -> None:
    card = _card(doc_type, 4, glare=_portrait_centre(doc_type))
    with pytest.raises(DocumentError) as info:
        _refuse_glare(card, doc_type)
    assert info.value.code is ReasonCode.CARD_GLARE
    assert "portrait" in str(info.value.detail)


@pytest.mark.parametrize("doc_type", list(DocumentType))
def test_photos_without_glare_pass(doc_type: DocumentType) -> None:
    for seed in range(3):
        card = _card(doc_type, seed, glare=None)
        _refuse_glare(card, doc_type)  # raises on glare
        p = PORTRAIT_BOXES[doc_type]
        box = (p.x, p.y, p.x + p.width, p.y + p.height)
        assert _washed_out(card, box) < GLARE_MAX_SHARE / 3


def test_glare_over_the_number_is_refused_and_named() -> None:
    # The resident card's number field (documents/ocr.py NUMBER_REGIONS): x 44-470, y 226-290.
    card = _card(DocumentType.KR_RESIDENT_CARD, 6, glare=(257 / 1012, 258 / 638))
    with pytest.raises(DocumentError) as info:
        _refuse_glare(card, DocumentType.KR_RESIDENT_CARD)
    assert "number" in str(info.value.detail)


@pytest.fixture
def env(tmp_path: Path, comparer: FaceComparer) -> Iterator[Env]:
    yield from _make_env(tmp_path, database_url("sqlite", tmp_path), comparer)


def test_the_service_asks_for_a_retake_without_using_an_attempt(env: Env) -> None:
    spec = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=4, today=TODAY)
    photo = photograph(spec, seed=4, glare=_portrait_centre(DocumentType.KR_RESIDENT_CARD))
    session = env.new_session()
    path = env.capture_path(session)
    assert _consent(env, path).status_code == 200
    problem = assert_problem(
        env.upload(f"{path}/document", encode(photo.image, "JPEG", quality=85)), 422, "card_glare"
    )
    assert "message_ko" in problem
    state = env.client.get(f"{path}/state").json()
    assert state["state"] == "awaiting_document"  # take it again: nothing was used up
    assert state["attempts_used"] == 0
