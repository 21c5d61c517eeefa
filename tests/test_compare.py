"""The Python API: `faceproof.compare`, `FaceComparer` and `CompareResult`."""

from __future__ import annotations

import dataclasses
import gc
import json
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import faceproof
from conftest import longest_number_list
from faceproof.capture import decode_image
from faceproof.comparison import CompareResult, FaceComparer
from faceproof.errors import FaceError, ImageError, InputError
from faceproof.faces.matcher import MatcherCalibration
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    from conftest import Images

SFACE = "sface-2021dec-int8bq"
DLIB = "dlib-resnet-v1"


@pytest.fixture(scope="module")
def packaged() -> MatcherCalibration:
    return MatcherCalibration.load()


@pytest.fixture(scope="module")
def comparer_with() -> Any:
    """Build (and cache) a FaceComparer for a modified packaged calibration."""
    built: dict[tuple[tuple[str, Any], ...], FaceComparer] = {}

    def make(**changes: Any) -> FaceComparer:
        key = tuple(sorted(changes.items()))
        if key not in built:
            built[key] = FaceComparer(dataclasses.replace(MatcherCalibration.load(), **changes))
        return built[key]

    return make


def assert_accepted(result: CompareResult, calibration: MatcherCalibration) -> None:
    assert result.match is True
    assert result.score >= result.threshold
    assert result.reasons[0] is ReasonCode.MATCH_ACCEPTED
    assert ReasonCode.MATCH_REJECTED not in result.reasons
    assert result.threshold == calibration.threshold
    assert result.fmr_target == calibration.fmr_target
    assert result.calibration_source == calibration.dataset


# --- genuine pairs ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["relit", "flipped", "example_b", "png", "webp"])
def test_genuine_pair_matches(
    comparer: FaceComparer, images: Images, packaged: MatcherCalibration, variant: str
) -> None:
    result = comparer.compare(images.jpeg, getattr(images, variant))
    assert_accepted(result, packaged)


@pytest.mark.parametrize(("variant", "mode"), [("grey", "L"), ("cmyk", "CMYK")])
def test_grey_and_cmyk_copies_match_the_colour_original(
    comparer: FaceComparer,
    images: Images,
    packaged: MatcherCalibration,
    variant: str,
    mode: str,
) -> None:
    decoded = decode_image(getattr(images, variant))
    assert decoded.source_mode == mode  # really a grey / CMYK file, converted on intake
    assert decoded.pixels.shape == (512, 512, 3)
    assert_accepted(comparer.compare(images.jpeg, decoded), packaged)


def test_exif_rotated_copy_matches_after_orientation_is_applied(
    comparer: FaceComparer, images: Images, packaged: MatcherCalibration
) -> None:
    decoded = decode_image(images.exif_rotated)
    assert decoded.orientation_applied == 6
    assert (decoded.width, decoded.height) == images.upright_crop.size == (512, 400)
    upright = np.asarray(images.upright_crop, dtype=np.int16)
    assert np.abs(decoded.pixels.astype(np.int16) - upright).mean() < 4  # JPEG noise only
    result = comparer.compare(images.jpeg, images.exif_rotated)
    assert_accepted(result, packaged)

    # Control: the same stored pixels without the tag are a sideways face and score far lower.
    sideways = decode_image(images.rotated_no_tag)
    assert sideways.orientation_applied == 1
    assert (sideways.width, sideways.height) == (400, 512)
    assert comparer.compare(images.jpeg, sideways).score < result.score - 3


# --- unusable input: typed errors with exact reason codes --------------------------------------

BAD_INPUTS = [
    ("empty", ImageError, ReasonCode.IMAGE_EMPTY),
    ("truncated", ImageError, ReasonCode.IMAGE_TRUNCATED),
    # Format is sniffed from magic bytes; bytes matching none of JPEG/PNG/WebP/HEIC are refused
    # before any decoder runs.
    ("random_bytes", ImageError, ReasonCode.IMAGE_UNSUPPORTED_FORMAT),
    # 20000x20000 (400 MP) claimed in < 100 bytes: Pillow's own bomb guard (> 2x its 89 MP
    # MAX_IMAGE_PIXELS) fires inside Image.open, before faceproof's 40 MP header check can run,
    # and is reported as a decompression bomb (not image_too_many_pixels).
    ("bomb_png", ImageError, ReasonCode.IMAGE_DECOMPRESSION_BOMB),
    # GIF is not an accepted container at all, so the animation check is never reached.
    ("animated_gif", ImageError, ReasonCode.IMAGE_UNSUPPORTED_FORMAT),
    ("flat_grey", FaceError, ReasonCode.FACE_NOT_FOUND),
    ("noise", FaceError, ReasonCode.FACE_NOT_FOUND),
    ("two_faces", FaceError, ReasonCode.FACE_MULTIPLE),
    # YuNet still finds the ~21 px face (it sees faces down to ~11 px), so the outcome is the
    # quality gate's rejection (face width < 32 px), not face_not_found.
    ("small_face", FaceError, ReasonCode.FACE_TOO_SMALL),
]


@pytest.mark.parametrize(("variant", "error", "code"), BAD_INPUTS)
def test_unusable_image_raises_a_typed_error_with_its_reason(
    comparer: FaceComparer,
    images: Images,
    variant: str,
    error: type[InputError],
    code: ReasonCode,
) -> None:
    for a, b in ((images.jpeg, getattr(images, variant)), (getattr(images, variant), images.jpeg)):
        with pytest.raises(error) as info:
            comparer.compare(a, b)
        assert info.value.code is code
        assert isinstance(info.value, InputError)
        assert info.value.http_status == 422
        assert str(info.value).startswith(f"{code.value}: ")


def test_bomb_header_is_refused_quickly(comparer: FaceComparer, images: Images) -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(ImageError):
        comparer.template(images.bomb_png)
    assert time.perf_counter() - start < 1.0  # nothing close to 400 MP was allocated


def test_two_faces_error_reports_the_count(comparer: FaceComparer, images: Images) -> None:
    with pytest.raises(FaceError) as info:
        comparer.template(images.two_faces)
    assert info.value.context == {"face_count": 2}
    assert info.value.to_dict()["code"] == "face_multiple"


# --- the result -------------------------------------------------------------------------------


def count_numbers(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_numbers(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(count_numbers(v) for v in value)
    return int(isinstance(value, int | float) and not isinstance(value, bool))


def test_result_dict_is_json_and_holds_no_embedding(comparer_with: Any, images: Images) -> None:
    # The fusion path carries the most numbers (two recognisers); still no embedding.
    result = comparer_with(band_low=1e6, band_high=1e6).compare(images.jpeg, images.relit)
    data = result.to_dict()
    text = json.dumps(data)  # serialisable as is, no custom encoder
    assert json.loads(text)["match"] is data["match"] is True
    assert set(data) >= {"score", "match", "threshold", "fmr_target", "reasons", "faces"}
    assert set(data["matcher"]["cosine"]) == {SFACE, DLIB}
    assert longest_number_list(data) <= 4
    assert count_numbers(data) < 128  # one embedding alone would be 128 numbers
    assert "embedding" not in text


# --- the cascade ------------------------------------------------------------------------------


def test_score_inside_the_band_gets_a_second_opinion(
    comparer_with: Any, images: Images, packaged: MatcherCalibration
) -> None:
    wide = comparer_with(band_low=1e6, band_high=1e6)  # every score is "near the threshold"
    result = wide.compare(images.jpeg, images.relit)
    assert result.details.path == "fusion"
    assert ReasonCode.MATCH_SECOND_OPINION in result.reasons
    assert set(result.details.cosines) == {SFACE, DLIB}
    assert result.match is True
    assert result.reasons[0] is ReasonCode.MATCH_ACCEPTED
    # The fused score is on its own scale, not the primary z-score.
    assert result.score != pytest.approx(result.details.z_scores[SFACE])


def test_score_outside_the_band_is_decided_by_the_primary_alone(
    comparer_with: Any, images: Images
) -> None:
    narrow = comparer_with(band_low=0.0, band_high=0.0)
    result = narrow.compare(images.jpeg, images.relit)
    assert result.details.path == "primary_only"
    assert ReasonCode.MATCH_SECOND_OPINION not in result.reasons
    assert set(result.details.cosines) == {SFACE}
    assert result.score == pytest.approx(result.details.z_scores[SFACE])


def test_second_opinion_extends_the_template_in_place(comparer_with: Any, images: Images) -> None:
    wide = comparer_with(band_low=1e6, band_high=1e6)
    a, b = wide.template(images.jpeg), wide.template(images.relit)
    assert set(a.embeddings) == {SFACE}  # the fast path embeds with the primary only
    wide.compare_templates(a, b)
    assert set(a.embeddings) == set(b.embeddings) == {SFACE, DLIB}


@pytest.mark.parametrize("band", [0.0, 1e6])
def test_score_is_symmetric(comparer_with: Any, images: Images, band: float) -> None:
    matcher = comparer_with(band_low=band, band_high=band)
    ab = matcher.compare(images.jpeg, images.example_b)
    ba = matcher.compare(images.example_b, images.jpeg)
    assert ab.score == pytest.approx(ba.score, rel=1e-6, abs=1e-9)
    assert ab.match == ba.match
    assert ab.details.path == ba.details.path


def test_threshold_decides(comparer_with: Any, images: Images) -> None:
    strict = comparer_with(threshold=1e9)
    result = strict.compare(images.jpeg, images.relit)
    assert result.match is False
    assert result.reasons[0] is ReasonCode.MATCH_REJECTED
    assert result.threshold == 1e9


def test_low_confidence_calibration_is_disclosed(
    comparer_with: Any, comparer: FaceComparer, images: Images
) -> None:
    provisional = comparer_with(low_confidence=True).compare(images.jpeg, images.relit)
    assert ReasonCode.THRESHOLD_LOW_CONFIDENCE in provisional.reasons
    assert (
        ReasonCode.THRESHOLD_LOW_CONFIDENCE
        not in comparer.compare(images.jpeg, images.relit).reasons
    )


def test_quality_warnings_are_carried_into_the_result(
    comparer: FaceComparer, images: Images
) -> None:
    result = comparer.compare(images.jpeg, images.blurred)
    assert ReasonCode.QUALITY_BLURRY in result.reasons
    assert ReasonCode.QUALITY_BLURRY in result.face_b.reasons
    assert ReasonCode.QUALITY_BLURRY not in result.face_a.reasons


# --- the public entry points ------------------------------------------------------------------


def test_module_level_compare_accepts_every_input_kind(
    images: Images, image_files: dict[str, Path], packaged: MatcherCalibration
) -> None:
    path_a, path_b = image_files["a.jpg"], image_files["b.jpg"]
    reference = faceproof.compare(path_a, path_b)
    assert isinstance(reference, faceproof.CompareResult)
    assert_accepted(reference, packaged)
    for a, b in (
        (str(path_a), str(path_b)),
        (path_a.read_bytes(), path_b.read_bytes()),
        (decode_image(path_a.read_bytes()), decode_image(path_b.read_bytes())),
    ):
        assert faceproof.compare(a, b).score == pytest.approx(reference.score)


def test_module_level_compare_raises_typed_errors(image_files: dict[str, Path]) -> None:
    with pytest.raises(faceproof.ImageError) as info:
        faceproof.compare(image_files["a.jpg"], image_files["missing.jpg"])
    assert info.value.code is ReasonCode.IMAGE_UNREADABLE_FILE


def test_embeddings_do_not_outlive_the_comparison(
    comparer: FaceComparer, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Embeddings live in memory for one comparison": nothing inside the comparer keeps them.
    embedder = comparer.analyzer.embedders[SFACE]
    original = embedder.embed
    alive: list[weakref.ref[Any]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        vector = original(*args, **kwargs)
        alive.append(weakref.ref(vector))
        return vector

    monkeypatch.setattr(embedder, "embed", spy)
    result = comparer.compare(images.jpeg, images.relit)
    assert result.match is True
    assert len(alive) == 2
    gc.collect()
    assert [ref for ref in alive if ref() is not None] == []
