"""The shared decision engine (`faceproof.verification.decide`) and the offline
`faceproof verify --document CARD --clip CLIP --json`.

The card is a photographed specimen (documents/ specimen generator) around the public-domain
example portrait (conftest `card`); the clips are generated from the same portrait (conftest) and
written to tmp_path as MP4 files, as a user would provide them. The issuer simulator runs on
loopback (conftest `issuer_sim`). Models are shared with the rest of the suite (monkeypatched
into the CLI) so that each run does not load them again.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import (
    CARD_TODAY,
    CHALLENGE_ACTIONS,
    CHALLENGE_SEED,
    Card,
    CliRunner,
    Images,
    IssuerFactory,
    encode,
)
from faceproof.comparison import CompareResult, FaceComparer
from faceproof.documents import Check, DocumentRead, DocumentType, pseudonymise, validate_document
from faceproof.liveness import ChallengeIssuer, LivenessEngine
from faceproof.liveness.result import CheckResult, LivenessResult
from faceproof.reasons import ReasonCode
from faceproof.verification import Decision, DocumentStatus, Outcome, assess_document, decide

KEY_HEX = "5a" * 32


# --- decide(): the policy, pure ---------------------------------------------------------------


@pytest.fixture(scope="module")
def matched(comparer: FaceComparer, images: Images) -> CompareResult:
    result = comparer.compare(images.jpeg, images.example_b)
    assert result.match
    return result


@pytest.fixture(scope="module")
def rejected(matched: CompareResult) -> CompareResult:
    return dataclasses.replace(
        matched, match=False, score=matched.threshold - 1.0, reasons=(ReasonCode.MATCH_REJECTED,)
    )


def _liveness(live: bool, code: ReasonCode | None = None) -> LivenessResult:
    check = CheckResult("parallax", 0.9 if live else 0.2, live, None if live else code)
    return LivenessResult(
        live=live,
        score=check.score,
        reasons=(ReasonCode.LIVENESS_PASSED,) if live else (code or ReasonCode.PLANAR_MOTION,),
        checks=(check,),
        best_frame=0,
        frames=45,
        duration_s=3.0,
        fps=15.0,
        face_frames=45,
        analysis_ms=1.0,
    )


LIVE = _liveness(True)
PRINT = _liveness(False, ReasonCode.PLANAR_MOTION)


def _decide(match: CompareResult | None, liveness: LivenessResult | None, **kw: Any) -> Decision:
    kw.setdefault("attempt", 1)
    kw.setdefault("attempts_limit", 3)
    return decide(match=match, liveness=liveness, **kw)


def test_live_match_without_a_verified_document_is_review(matched: CompareResult) -> None:
    d = _decide(matched, LIVE)
    assert d.outcome is Outcome.REVIEW
    assert d.final
    assert d.reasons[0] is ReasonCode.LIVENESS_PASSED
    assert ReasonCode.MATCH_ACCEPTED in d.reasons
    assert d.reasons[-1] is ReasonCode.DOCUMENT_NOT_VERIFIED
    assert ReasonCode.LIVENESS_NOT_PERFORMED not in d.reasons


def test_pass_needs_liveness_and_a_verified_document(matched: CompareResult) -> None:
    verified = DocumentStatus.VERIFIED
    assert _decide(matched, LIVE, document=verified).outcome is Outcome.PASS
    no_liveness = _decide(matched, None, document=verified)
    assert no_liveness.outcome is Outcome.REVIEW
    assert ReasonCode.LIVENESS_NOT_PERFORMED in no_liveness.reasons
    selfie = _decide(matched, None)  # the single-selfie endpoint today
    assert selfie.outcome is Outcome.REVIEW
    assert {ReasonCode.LIVENESS_NOT_PERFORMED, ReasonCode.DOCUMENT_NOT_VERIFIED} <= set(
        selfie.reasons
    )


def test_not_live_is_retry_then_alternative(matched: CompareResult) -> None:
    d = _decide(None, PRINT, attempt=1)
    assert d.outcome is Outcome.RETRY
    assert not d.final
    assert d.reasons == (ReasonCode.PLANAR_MOTION,)
    last = _decide(None, PRINT, attempt=3)
    assert last.outcome is Outcome.ALTERNATIVE_REQUIRED
    assert last.final
    assert last.reasons == (ReasonCode.PLANAR_MOTION, ReasonCode.ATTEMPTS_EXHAUSTED)
    # A match never rescues a clip that is not live.
    assert _decide(matched, PRINT, document=DocumentStatus.VERIFIED).outcome is Outcome.RETRY


def test_no_match_and_unusable_are_retry(rejected: CompareResult) -> None:
    d = _decide(rejected, LIVE)
    assert d.outcome is Outcome.RETRY
    assert ReasonCode.MATCH_REJECTED in d.reasons
    assert _decide(rejected, LIVE, attempt=3).outcome is Outcome.ALTERNATIVE_REQUIRED
    u = _decide(None, None, unusable=ReasonCode.CLIP_CORRUPT)
    assert (u.outcome, u.reasons) == (Outcome.RETRY, (ReasonCode.CLIP_CORRUPT,))
    rejected_doc = _decide(
        None,
        None,
        document=DocumentStatus.REJECTED,
        document_reasons=[ReasonCode.DOCUMENT_EXPIRED],
    )
    assert (rejected_doc.outcome, rejected_doc.reasons) == (
        Outcome.FAIL,
        (ReasonCode.DOCUMENT_EXPIRED,),
    )
    with pytest.raises(ValueError, match="counts from 1"):
        _decide(None, None, attempt=0)
    # The document step decides a rejected document before any attempt.
    early = _decide(
        None, None, attempt=0, document=DocumentStatus.REJECTED,
        document_reasons=[ReasonCode.ISSUER_REVOKED],
    )  # fmt: skip
    assert (early.outcome, early.reasons, early.final) == (
        Outcome.FAIL,
        (ReasonCode.ISSUER_REVOKED,),
        True,
    )


def test_document_reasons_in_pass_and_review(matched: CompareResult) -> None:
    confirmed = [ReasonCode.ISSUER_CONFIRMED]
    d = _decide(matched, LIVE, document=DocumentStatus.VERIFIED, document_reasons=confirmed)
    assert d.outcome is Outcome.PASS
    assert d.reasons[0] is ReasonCode.LIVENESS_PASSED
    assert {ReasonCode.MATCH_ACCEPTED, ReasonCode.ISSUER_CONFIRMED} <= set(d.reasons)
    down = [ReasonCode.ISSUER_UNAVAILABLE]
    r = _decide(matched, LIVE, document=DocumentStatus.UNVERIFIED, document_reasons=down)
    assert r.outcome is Outcome.REVIEW
    assert r.reasons[-2:] == (ReasonCode.ISSUER_UNAVAILABLE, ReasonCode.DOCUMENT_NOT_VERIFIED)
    # A rejected document fails whatever the face evidence.
    f = _decide(
        matched, LIVE, document=DocumentStatus.REJECTED,
        document_reasons=[ReasonCode.DOCUMENT_EXPIRED],
    )  # fmt: skip
    assert (f.outcome, f.reasons) == (Outcome.FAIL, (ReasonCode.DOCUMENT_EXPIRED,))


RESIDENT = {"name_ko": "홍길동", "number": "900101-1234568", "issue_date": "2015-03-04"}


@pytest.mark.parametrize(
    ("fields", "issuer", "configured", "status", "reasons"),
    [
        (RESIDENT, None, False, "verified", []),
        (RESIDENT, Check("issuer", True, ReasonCode.ISSUER_CONFIRMED), True, "verified",
         ["issuer_confirmed"]),
        (RESIDENT, Check("issuer", False, ReasonCode.ISSUER_REVOKED), True, "rejected",
         ["issuer_revoked"]),
        (RESIDENT, Check("issuer", False, ReasonCode.ISSUER_UNAVAILABLE), True, "unverified",
         ["issuer_unavailable"]),
        (RESIDENT, None, True, "unverified", []),  # configured but not asked
        ({**RESIDENT, "issue_date": ""}, None, False, "unverified", ["field_unreadable"]),
        ({**RESIDENT, "issue_date": "2099-01-01"}, None, False, "rejected",
         ["issue_date_in_future"]),
    ],
)  # fmt: skip
def test_assess_document_policy(
    fields: dict[str, str],
    issuer: Check | None,
    configured: bool,
    status: str,
    reasons: list[str],
) -> None:
    read = validate_document(DocumentType.KR_RESIDENT_CARD, fields, today=date(2026, 5, 1))
    if issuer is not None:
        read = DocumentRead(read.type, read.fields, (*read.checks, issuer), read.portrait)
    key = b"k" * 32
    evidence = assess_document(read, issuer_configured=configured, pseudonym_key=key)
    assert evidence.status.value == status
    assert [c.value for c in evidence.reasons] == reasons
    assert evidence.type == "kr_resident_card"
    assert evidence.subject == pseudonymise("9001011234568", key)
    assert "1234568" not in json.dumps(evidence.to_dict())


def test_decision_dict_holds_scores_not_biometrics(matched: CompareResult) -> None:
    doc = _decide(matched, LIVE, models=["m1"]).to_dict()
    assert doc["decision"] == "review"
    assert set(doc["match"]) == {"score", "threshold", "fmr_target", "match"}
    assert doc["match"]["match"] is True
    assert doc["liveness"]["live"] is True
    assert doc["models"] == ["m1"]
    assert len(json.dumps(doc)) < 6000


# --- the offline CLI --------------------------------------------------------------------------


@pytest.fixture
def offline(
    tmp_path: Path,
    card: Card,
    expired_card: Card,
    comparer: FaceComparer,
    liveness_engine: LivenessEngine,
    head_turn_mp4: bytes,
    print_attack_mp4: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Path]:
    import faceproof.comparison as comparison_module
    import faceproof.liveness.engine as engine_module

    monkeypatch.setattr(comparison_module, "FaceComparer", lambda: comparer)
    monkeypatch.setattr(engine_module, "LivenessEngine", lambda **_: liveness_engine)
    monkeypatch.setenv("FACEPROOF_CHALLENGE_KEY", KEY_HEX)
    files = {
        "card": tmp_path / "card.jpg",
        "expired": tmp_path / "expired.jpg",
        "live": tmp_path / "head-turn.mp4",
        "attack": tmp_path / "print.mp4",
    }
    files["card"].write_bytes(card.jpeg)
    files["expired"].write_bytes(expired_card.jpeg)
    files["live"].write_bytes(head_turn_mp4)
    files["attack"].write_bytes(print_attack_mp4)
    return files


CONTRACT = {"decision", "reasons", "messages", "match", "liveness", "document"}


def test_live_clip_and_a_verified_card_give_pass(
    cli: CliRunner, offline: dict[str, Path], card: Card
) -> None:
    r = cli("verify", "--document", offline["card"], "--clip", offline["live"], "--json")
    assert r.code == 0, r.output
    doc = r.json()
    assert set(doc) >= CONTRACT
    assert doc["decision"] == "pass"
    assert "document_not_verified" not in doc["reasons"]
    assert "match_accepted" in doc["reasons"]
    assert "liveness_passed" in doc["reasons"]
    assert set(doc["match"]) >= {"score", "threshold", "fmr_target", "match"}
    assert doc["match"]["match"] is True
    assert doc["match"]["score"] >= doc["match"]["threshold"]
    assert doc["liveness"]["live"] is True
    assert doc["document"]["status"] == "verified"
    assert doc["document"]["type"] == "kr_resident_card"
    assert {"field_number", "portrait_face"} <= {c["name"] for c in doc["document"]["checks"]}
    assert doc["document"]["face"]["box"]
    assert card.fields["number"] not in r.out  # no raw number in the output
    assert doc["attempts"] == {"used": 1, "limit": 1}
    assert {m["code"] for m in doc["messages"]} == set(doc["reasons"])


def test_with_the_issued_challenge(cli: CliRunner, offline: dict[str, Path]) -> None:
    issuer = ChallengeIssuer(bytes.fromhex(KEY_HEX), rng=random.Random(CHALLENGE_SEED))
    challenge, spec = issuer.issue("offline-check")
    assert challenge.actions == CHALLENGE_ACTIONS
    argv = ["verify", "--document", offline["card"], "--clip", offline["live"], "--json"]
    doc = cli(*argv, "--challenge", spec).json()
    assert doc["decision"] == "pass"
    assert doc["liveness"]["checks"]["challenge"]["passed"] is True
    other = ChallengeIssuer(bytes.fromhex(KEY_HEX), rng=random.Random(4)).issue("x")[1]
    doc = cli(*argv, "--challenge", other).json()  # look_up, turn_left: not what was done
    assert doc["liveness"]["live"] is False
    assert "challenge_not_followed" in doc["reasons"]
    bad = cli(*argv, "--challenge", spec[:-3] + "xyz")
    assert bad.code == 3
    assert bad.json()["reasons"] == ["challenge_unknown"]


def test_print_attack_is_not_live(cli: CliRunner, offline: dict[str, Path]) -> None:
    r = cli("verify", "--document", offline["card"], "--clip", offline["attack"], "--json")
    assert r.code == 1, r.output
    doc = r.json()
    assert set(doc) >= CONTRACT
    assert doc["liveness"]["live"] is False
    assert {"planar_motion", "motion_insufficient"} & set(doc["reasons"])
    assert doc["decision"] == "alternative_required"  # one attempt of one
    assert doc["reasons"][-1] == "attempts_exhausted"
    assert doc["match"] == {"score": None, "threshold": None, "fmr_target": None, "match": False}


def test_text_output(cli: CliRunner, offline: dict[str, Path]) -> None:
    r = cli("verify", "--document", offline["card"], "--clip", offline["live"])
    assert r.code == 0
    assert r.out.startswith("PASS  document=verified  live=true")
    assert "match_accepted" in r.out


@pytest.mark.parametrize(
    ("which", "code"), [("card", "image_unreadable_file"), ("clip", "clip_corrupt")]
)
def test_missing_file_is_exit_3_with_reason(
    cli: CliRunner, offline: dict[str, Path], tmp_path: Path, which: str, code: str
) -> None:
    card = tmp_path / "nope.jpg" if which == "card" else offline["card"]
    clip = tmp_path / "nope.mp4" if which == "clip" else offline["live"]
    r = cli("verify", "--document", card, "--clip", clip, "--json")
    assert r.code == 3, r.output
    doc = r.json()
    assert set(doc) >= CONTRACT
    assert doc["decision"] is None
    assert doc["reasons"] == [code]
    assert doc["error"]["code"] == code
    assert "Traceback" not in r.output
    plain = cli("verify", "--document", card, "--clip", clip)
    assert plain.code == 3
    assert code in plain.err
    assert plain.out == ""


def test_clip_without_a_face_is_exit_3(
    cli: CliRunner, offline: dict[str, Path], tmp_path: Path
) -> None:
    from conftest import encode_clip
    from faceproof.liveness import Clip

    grey = [np.full((120, 160, 3), 90 + i, np.uint8) for i in range(20)]
    path = tmp_path / "empty.mp4"
    path.write_bytes(encode_clip(Clip.from_arrays(grey, [i / 10 for i in range(20)])))
    r = cli("verify", "--document", offline["card"], "--clip", path, "--json")
    assert r.code == 3, r.output
    assert r.json()["reasons"] == ["face_not_found"]


def test_usage_errors(cli: CliRunner) -> None:
    assert cli("verify", "--clip", "x.mp4").code == 2
    assert cli("verify", "--document", "x.jpg").code == 2


# --- the document offline: issuer simulator, expired and non-card photos ---------------------


def _verify(cli: CliRunner, offline: dict[str, Path], *extra: str, card: str = "card") -> Any:
    argv = ["verify", "--document", offline[card], "--clip", offline["live"], "--json"]
    return cli(*argv, "--today", CARD_TODAY.isoformat(), *extra)


def test_issuer_confirms_revokes_or_is_unreachable(
    cli: CliRunner, offline: dict[str, Path], card: Card, issuer_sim: IssuerFactory
) -> None:
    valid = issuer_sim([card.registry_entry("valid")])
    r = _verify(cli, offline, "--issuer", valid.url)
    assert r.code == 0, r.output
    doc = r.json()
    assert doc["decision"] == "pass"
    assert {"issuer_confirmed", "liveness_passed", "match_accepted"} <= set(doc["reasons"])

    revoked = issuer_sim([card.registry_entry("revoked")])
    r = _verify(cli, offline, "--issuer", revoked.url)
    assert r.code == 1
    doc = r.json()
    assert (doc["decision"], doc["reasons"]) == ("fail", ["issuer_revoked"])
    assert doc["document"]["status"] == "rejected"
    assert doc["liveness"] is None  # a rejected document: the clip is not analysed

    valid.stop()  # unreachable now
    start = time.monotonic()
    r = _verify(cli, offline, "--issuer", valid.url)
    assert time.monotonic() - start < 10
    doc = r.json()
    assert r.code == 1
    assert doc["decision"] == "review"
    assert doc["document"]["status"] == "unverified"
    assert {"issuer_unavailable", "document_not_verified"} <= set(doc["reasons"])


def test_expired_card_fails_and_a_non_card_is_exit_3(
    cli: CliRunner, offline: dict[str, Path], tmp_path: Path
) -> None:
    r = _verify(cli, offline, card="expired")
    assert r.code == 1, r.output
    doc = r.json()
    assert (doc["decision"], doc["reasons"]) == ("fail", ["document_expired"])
    assert doc["document"]["type"] == "kr_driver_license"

    blank = tmp_path / "blank.jpg"
    blank.write_bytes(encode(Image.new("RGB", (800, 600), (120, 110, 100)), "JPEG"))
    offline["blank"] = blank
    r = _verify(cli, offline, card="blank")
    assert r.code == 3, r.output
    doc = r.json()
    assert set(doc) >= CONTRACT
    assert doc["decision"] is None
    assert doc["reasons"] == ["card_not_found"]
    assert doc["error"]["context"]["input"] == "document"
