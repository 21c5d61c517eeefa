"""Non-biometric paths: mobile-ID presentations (SD-JWT VC) and the clerk's manual check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from faceproof.alternatives import (
    ManualCheckError,
    MobileIdError,
    MobileIdVerifier,
    TestHolder,
    TestIssuer,
    record_manual_check,
)
from faceproof.alternatives.jws import sign_jws
from faceproof.cli.main import main
from faceproof.privacy.receipts import b64url_decode, b64url_encode
from faceproof.reasons import ReasonCode

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 12:00 in Seoul
NONCE, AUDIENCE = "session-nonce-4f1c", "https://faceproof.example/v1/sessions/abc"


@dataclass
class Published:
    """The issuer's published status lists, as a verifier would fetch them."""

    lists: dict[str, str] = field(default_factory=dict)

    def fetch(self, uri: str) -> str:
        if uri not in self.lists:
            raise ValueError("not published")
        return self.lists[uri]


@dataclass
class World:
    issuer: TestIssuer
    holder: TestHolder
    published: Published
    verifier: MobileIdVerifier

    def credential(self, **overrides: object) -> tuple[str, list[str], int]:
        claims: dict[str, object] = {
            "name": "홍길동",
            "birth_date": "1990-01-01",
            "number": "900101-1234567",
            "now": NOW - timedelta(days=10),
        }
        claims.update(overrides)
        return self.issuer.issue(self.holder, **claims)  # type: ignore[arg-type]

    def publish(self) -> None:
        self.published.lists[self.issuer.status_uri] = self.issuer.status_list(NOW)

    def present(self, credential: str, disclosures: list[str], **kw: object) -> str:
        args: dict[str, object] = {"nonce": NONCE, "audience": AUDIENCE, "now": NOW}
        args.update(kw)
        return self.holder.present(credential, disclosures, **args)  # type: ignore[arg-type]


@pytest.fixture
def world() -> World:
    issuer, published = TestIssuer(), Published()
    verifier = MobileIdVerifier({issuer.issuer_id: issuer.public_key}, published, clock=lambda: NOW)
    return World(issuer, TestHolder(), published, verifier)


def expect(code: ReasonCode, world: World, presentation: str, nonce: str = NONCE) -> None:
    with pytest.raises(MobileIdError) as info:
        world.verifier.verify(presentation, nonce=nonce, audience=AUDIENCE)
    assert info.value.code is code


def test_a_valid_presentation_proves_identity_without_face_data(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    identity = world.verifier.verify(
        world.present(credential, disclosures), nonce=NONCE, audience=AUDIENCE
    )
    assert (identity.name, identity.birth_date, identity.number) == (
        "홍길동",
        "1990-01-01",
        "900101-1234567",
    )
    assert identity.issuer == world.issuer.issuer_id


def test_untrusted_issuer(world: World) -> None:
    impostor = TestIssuer(issuer_id="did:example:someone-else")
    credential, disclosures, _ = impostor.issue(
        world.holder, name="x", birth_date="1990-01-01", number="1", now=NOW
    )
    expect(ReasonCode.MOBILE_ID_UNTRUSTED_ISSUER, world, world.present(credential, disclosures))


def test_forged_credential_signed_by_another_key_under_the_trusted_name(world: World) -> None:
    forger = TestIssuer(issuer_id=world.issuer.issuer_id, key=Ed25519PrivateKey.generate())
    credential, disclosures, _ = forger.issue(
        world.holder, name="x", birth_date="1990-01-01", number="1", now=NOW
    )
    world.publish()
    expect(ReasonCode.MOBILE_ID_INVALID, world, world.present(credential, disclosures))


def test_tampered_disclosure_is_refused(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    salt, _, _ = json.loads(b64url_decode(disclosures[2]))
    forged = b64url_encode(json.dumps([salt, "number", "010101-3000000"]).encode())
    presentation = world.present(credential, [*disclosures[:2], forged])
    expect(ReasonCode.MOBILE_ID_INVALID, world, presentation)


def test_expired_credential(world: World) -> None:
    credential, disclosures, _ = world.credential(
        now=NOW - timedelta(days=400), valid_for=timedelta(days=365)
    )
    world.publish()
    expect(ReasonCode.MOBILE_ID_EXPIRED, world, world.present(credential, disclosures))


def test_revoked_credential(world: World) -> None:
    credential, disclosures, index = world.credential()
    world.issuer.revoked.add(index)
    world.publish()
    expect(ReasonCode.MOBILE_ID_REVOKED, world, world.present(credential, disclosures))


def test_unpublished_status_list_fails_closed(world: World) -> None:
    credential, disclosures, _ = world.credential()
    expect(ReasonCode.MOBILE_ID_INVALID, world, world.present(credential, disclosures))


def test_wrong_nonce_or_audience(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    expect(
        ReasonCode.MOBILE_ID_NONCE_MISMATCH,
        world,
        world.present(credential, disclosures),
        nonce="another-session",
    )
    expect(
        ReasonCode.MOBILE_ID_NONCE_MISMATCH,
        world,
        world.present(credential, disclosures, audience="https://elsewhere.example"),
    )


def test_presentation_signed_by_someone_else_breaks_holder_binding(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    thief = TestHolder()
    presentation = thief.present(credential, disclosures, nonce=NONCE, audience=AUDIENCE, now=NOW)
    expect(ReasonCode.MOBILE_ID_HOLDER_BINDING, world, presentation)


def test_binding_cannot_be_reused_with_other_disclosures(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    full = world.present(credential, disclosures)
    binding = full.rsplit("~", 1)[1]
    trimmed = "~".join([credential, *disclosures[:2]]) + "~" + binding
    expect(ReasonCode.MOBILE_ID_HOLDER_BINDING, world, trimmed)


def test_clock_skew_and_stale_presentations(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    future = world.present(credential, disclosures, now=NOW + timedelta(minutes=10))
    expect(ReasonCode.MOBILE_ID_CLOCK_SKEW, world, future)
    stale = world.present(credential, disclosures, now=NOW - timedelta(hours=1))
    expect(ReasonCode.MOBILE_ID_CLOCK_SKEW, world, stale)


def test_missing_disclosures(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    expect(ReasonCode.MOBILE_ID_MISSING_CLAIMS, world, world.present(credential, disclosures[:1]))


@pytest.mark.parametrize(
    "presentation",
    ["", "not-a-token", "a.b.c~", "~~~", "x" * 200_000, "e30.e30.AA~e30"],
)
def test_garbage_is_a_typed_error(world: World, presentation: str) -> None:
    with pytest.raises(MobileIdError) as info:
        world.verifier.verify(presentation, nonce=NONCE, audience=AUDIENCE)
    assert info.value.code in {ReasonCode.MOBILE_ID_INVALID, ReasonCode.MOBILE_ID_UNTRUSTED_ISSUER}


def test_alg_none_and_hmac_are_refused(world: World) -> None:
    credential, disclosures, _ = world.credential()
    world.publish()
    _, body, _ = credential.split(".")
    unsigned = b64url_encode(b'{"alg":"none","typ":"vc+sd-jwt"}') + "." + body + "."
    expect(ReasonCode.MOBILE_ID_INVALID, world, world.present(unsigned, disclosures))
    # A token whose header claims EdDSA but was signed with a different key type is just invalid.
    other = sign_jws(Ed25519PrivateKey.generate(), {"typ": "vc+sd-jwt"}, {"iss": "x"})
    expect(ReasonCode.MOBILE_ID_UNTRUSTED_ISSUER, world, world.present(other, disclosures))


# --- manual path ---------------------------------------------------------------------------


def test_same_day_abstract_is_recorded_without_biometrics() -> None:
    check = record_manual_check(
        clerk_id="clerk-17",
        document_serial="2026-1127-0042",
        abstract_issued_on=date(2026, 11, 27),
        holder_matches=True,
        now=NOW,
    )
    assert check.outcome == "confirmed"
    assert check.reasons == (ReasonCode.MANUAL_CHECK_RECORDED,)
    record = check.to_dict()
    assert set(record) == {
        "path",
        "clerk_id",
        "document_serial",
        "abstract_issued_on",
        "checked_at",
        "outcome",
        "reasons",
    }


def test_the_day_is_counted_in_korean_time() -> None:
    # 23:30 UTC on the 26th is already the 27th in Seoul.
    late = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    check = record_manual_check(
        clerk_id="clerk-17",
        document_serial="A1B2C3D4",
        abstract_issued_on=date(2026, 11, 27),
        holder_matches=True,
        now=late,
    )
    assert check.outcome == "confirmed"


def test_yesterdays_abstract_is_rejected() -> None:
    check = record_manual_check(
        clerk_id="clerk-17",
        document_serial="A1B2C3D4",
        abstract_issued_on=date(2026, 11, 26),
        holder_matches=True,
        now=NOW,
    )
    assert check.outcome == "rejected"
    assert check.reasons == (ReasonCode.MANUAL_ABSTRACT_NOT_SAME_DAY,)


@pytest.mark.parametrize(
    ("clerk", "serial"), [("", "A1B2C3D4"), ("clerk-1", "x"), ("a b", "123456")]
)
def test_malformed_manual_entries(clerk: str, serial: str) -> None:
    with pytest.raises(ManualCheckError) as info:
        record_manual_check(
            clerk_id=clerk,
            document_serial=serial,
            abstract_issued_on=date(2026, 11, 27),
            holder_matches=True,
            now=NOW,
        )
    assert info.value.code is ReasonCode.MANUAL_CHECK_INVALID


def test_cli_test_issuer_and_offline_verifier_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = tmp_path / "trust"
    args = ["--nonce", NONCE, "--aud", AUDIENCE]
    issue = ["mobile-id", "issue", "--name", "김민지", "--birth-date", "1995-05-05"]
    assert main([*issue, "--number", "950505-2345678", *args, "--out-dir", str(trust)]) == 0
    presentation = capsys.readouterr().out.strip()
    assert presentation.count("~") == 4  # credential, three disclosures, key binding
    assert (
        main(["mobile-id", "verify", presentation, "--trust-dir", str(trust), *args, "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["verified"] is True
    assert result["number"] == "950505-2******"  # never printed in full
    wrong = ["--nonce", "other", "--aud", AUDIENCE]
    assert main(["mobile-id", "verify", presentation, "--trust-dir", str(trust), *wrong]) == 3
    assert "mobile_id_nonce_mismatch" in capsys.readouterr().err
