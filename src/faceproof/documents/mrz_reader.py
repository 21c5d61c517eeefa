"""Reading a passport's MRZ from the rectified data page, by matching OCR-B glyphs.

Tesseract reads runs of the filler `<` as `K` or `C` (docs/documents.md), and an MRZ is mostly
filler. But the MRZ is machine-readable by design (ICAO 9303-3): one typeface (OCR-B), a fixed
pitch, 2 lines of 44 characters at the bottom of the page. So each line is cut into its 44
character cells and every cell is compared with the 37 OCR-B glyphs (`A-Z`, `0-9`, `<`)
rendered from Debian's fonts-ocr-b at the line's measured size. `mrz.parse_td3` then checks
the check digits and repairs the usual O/0-type confusions by position.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from faceproof.documents.errors import DocumentError
from faceproof.documents.mrz import TD3, parse_td3
from faceproof.documents.specimen import mrz_font
from faceproof.reasons import ReasonCode

__all__ = ["MRZ_ALPHABET", "line_scores", "plausible_line1", "read_mrz", "read_mrz_lines"]

MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
_LINE_CHARS = 44
_BAND_TOP = 0.72  # the MRZ zone: the bottom 28 % of a TD3 data page
_GLYPH = (16, 24)  # (width, height) every cell is compared at
_MIN_LINE_PX = 8
# Line 1 has no check digit: its shape is the only guard. `P`, a type letter or `<`, the
# issuing state, then names (letters, single `<` inside a name, `<<` between primary and
# secondary), then only fillers. A name without `<<` (one name only) is legal but rare, and a
# misread `<` makes one too: such a line is not taken (the passport stays unverified).
_LINE1: re.Pattern[str] = re.compile(r"^P[A-Z<][A-Z<]{3}[A-Z]+(<[A-Z]+)*<<[A-Z]+(<[A-Z]+)*<*$")

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Span = tuple[int, int]  # [start, end) columns of one glyph


def _ink(grey: U8) -> npt.NDArray[np.bool_]:
    """Dark print on a light page: Otsu's threshold on a lightly smoothed copy."""
    blurred = cv2.GaussianBlur(grey, (3, 3), 0)
    _, binary = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return binary > 0


def _runs(profile: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) of the True runs of a 1-D mask, end exclusive."""
    padded = np.concatenate([[False], profile, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _geometry(ink: npt.NDArray[np.bool_], spans: list[Span]) -> tuple[int, int, float]:
    """The line's top and bottom (of its letters and digits) and its character pitch."""
    tops, bottoms = [], []
    for a, b in spans:
        rows = np.flatnonzero(ink[:, a:b].any(axis=1))
        if rows.size:
            tops.append(rows[0])
            bottoms.append(rows[-1] + 1)
    heights = np.asarray(bottoms) - np.asarray(tops)
    tall = heights >= 0.8 * np.percentile(heights, 90)  # most cells are the shorter filler
    top = int(np.median(np.asarray(tops)[tall]))
    bottom = int(np.median(np.asarray(bottoms)[tall]))
    centres = np.asarray([(a + b) / 2 for a, b in spans])
    pitch = float(np.median(np.diff(centres))) if len(spans) > 1 else float(bottom - top)
    return top, bottom, pitch


def _cell_vectors(shade: F32, spans: list[Span], top: int, bottom: int, pitch: float) -> F32:
    """One vector per cell: the cell window (one pitch wide, centred on its glyph, from the
    line's top to its bottom with a margin) kept in proportion, so size and place count (the
    filler `<` is short and centred, `0` is narrower than `O`), resized, smoothed, and made
    zero-mean unit-norm for a correlation."""
    pad = max(1, round(0.15 * (bottom - top)))
    half = pitch / 2
    padded: F32 = np.pad(shade, ((pad, pad), (round(pitch), round(pitch))))
    smalls = []
    for a, b in spans:
        x0 = round((a + b) / 2 - half) + round(pitch)
        window = padded[top : bottom + 2 * pad, x0 : x0 + max(2, round(pitch))]
        smalls.append(cv2.resize(window, _GLYPH, interpolation=cv2.INTER_AREA))
    # All cells smoothed in one call (as channels: OpenCV blurs each on its own), then
    # centred and normalised together.
    stacked = np.stack(smalls, axis=-1)
    blurred = np.concatenate(
        [
            cv2.GaussianBlur(stacked[..., i : i + _CV_MAX_CHANNELS], (3, 3), 0.8).reshape(
                _GLYPH[1], _GLYPH[0], -1
            )
            for i in range(0, stacked.shape[-1], _CV_MAX_CHANNELS)
        ],
        axis=-1,
    )
    vecs = blurred.reshape(-1, len(spans)).T
    vecs = vecs - vecs.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.asarray(vecs / np.where(norms > 0, norms, 1), np.float32)


_CV_MAX_CHANNELS = 500  # OpenCV's limit is 512 channels an image


_BLURS = (0.3, 0.6, 1.2, 1.8)  # camera softness the templates are made at (Gaussian sigma, px)


@cache
def _templates(cap_px: int) -> F32:
    """The 37 OCR-B glyphs rendered at a cap height of `cap_px`, softened as a camera would
    (at four strengths), then cut and measured by the same code as a page's line: rows in
    blocks of len(MRZ_ALPHABET), one block per softness."""
    size = max(8, round(cap_px * 100 / _cap_height_at_100()))
    font = mrz_font(size)
    text = MRZ_ALPHABET
    width = round(font.getlength(text)) + 4 * size
    canvas = Image.new("L", (width, 3 * size), 255)
    ImageDraw.Draw(canvas).text((2 * size, size), text, font=font, fill=0)
    sharp = np.asarray(canvas)
    ink = _ink(sharp)
    spans = _blobs(ink, int(np.flatnonzero(ink.any(axis=1)).size), len(text))
    assert spans is not None  # every OCR-B glyph is one blob
    assert len(spans) == len(text)
    top, bottom, pitch = _geometry(ink, spans)
    blocks = []
    for sigma in _BLURS:
        grey = cv2.GaussianBlur(sharp, (0, 0), sigma)
        shade: F32 = (1 - grey.astype(np.float32) / 255).astype(np.float32)
        blocks.append(_cell_vectors(shade, spans, top, bottom, pitch))
    return np.concatenate(blocks)


@cache
def _cap_height_at_100() -> float:
    """Ink height of a capital at font size 100 (the line height is measured on capitals)."""
    canvas = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(canvas).text((20, 20), "E", font=mrz_font(100), fill=0)
    rows = np.flatnonzero((np.asarray(canvas) < 128).any(axis=1))
    return float(rows[-1] - rows[0] + 1)


def _extent(ink: npt.NDArray[np.bool_], line_height: int) -> tuple[int, int]:
    """The line's left and right ink edges: the widest group of ink columns whose gaps are
    under two character heights (specks and stamps beside the line fall outside it)."""
    groups: list[list[int]] = []
    for a, b in _runs(np.asarray(ink.any(axis=0), bool)):
        if groups and a - groups[-1][1] < 2 * line_height:
            groups[-1][1] = b
        else:
            groups.append([a, b])
    a, b = max(groups, key=lambda g: g[1] - g[0])
    return a, b


def _blobs(ink: npt.NDArray[np.bool_], line_height: int, count: int) -> list[Span] | None:
    """Column spans of the line's `count` glyphs, one blob each (OCR-B's glyphs are single
    blobs): a glyph broken in two is joined, two touching glyphs are split. None when the line
    is too far from `count` blobs to tell."""
    found, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    left, right = _extent(ink, line_height)  # specks and stamps beside the line are not glyphs
    spans = sorted(
        (int(x), int(x + w))
        for x, _, w, h, area in stats[1:found]
        if h >= 0.3 * line_height and area >= 4 and x >= left and x + w <= right
    )
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a < merged[-1][1] - 1:  # overlapping in x: parts of one glyph
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if not count // 2 <= len(merged) <= 2 * count:
        return None
    # Glyphs that touch (ink spread by blur) make one wide blob: cut it into as many glyphs
    # as its width holds at the line's pitch (a glyph's ink is about 0.6 pitch wide).
    pitch = (merged[-1][1] - merged[0][0]) / (count - 0.4)
    cut: list[list[int]] = []
    for a, b in merged:
        k = max(1, round((b - a - 0.6 * pitch) / pitch) + 1)
        cut += [[a + (b - a) * i // k, a + (b - a) * (i + 1) // k] for i in range(k)]
    merged = cut
    while len(merged) > count:  # join the neighbours with the narrowest combined width
        i = min(range(len(merged) - 1), key=lambda k: merged[k + 1][1] - merged[k][0])
        merged[i : i + 2] = [[merged[i][0], merged[i + 1][1]]]
    while len(merged) < count:  # split the widest blob in the middle
        i = max(range(len(merged)), key=lambda k: merged[k][1] - merged[k][0])
        a, b = merged[i]
        merged[i : i + 1] = [[a, (a + b) // 2], [(a + b) // 2, b]]
    return [(a, b) for a, b in merged]


def _glyph_ink(ink: npt.NDArray[np.bool_], line_height: int) -> npt.NDArray[np.bool_]:
    """Only the blobs that can be glyphs: not the page's edge, a rule or a speck (a slanted
    page edge can cross the line's rows near its ends)."""
    found, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    keep = np.zeros(found, bool)
    for i in range(1, found):
        _, _, w, h, area = stats[i]
        # A glyph is at least a stroke wide; a page edge or crease is a hairline.
        keep[i] = 0.12 * line_height <= w <= 3 * line_height and h >= 0.3 * line_height
        keep[i] &= area >= 4
    kept: npt.NDArray[np.bool_] = keep[labels]
    return kept


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
_DIGITS = "0123456789"
_ANY = MRZ_ALPHABET
# What ICAO 9303-4 allows at each position of a TD3 line: a reader that knows a date is all
# digits never reads its 0 as O (OCR-B's 0 and O, 5 and S, 2 and Z are near twins).
_LINE1_ALLOWED = ("P", _LETTERS, *([_LETTERS] * 42))
_LINE2_ALLOWED = (
    *([_ANY] * 9),  # document number
    _DIGITS,
    *([_LETTERS] * 3),  # nationality
    *([_DIGITS] * 7),  # birth date and its check digit
    "MFX<",
    *([_DIGITS] * 7),  # expiry date and its check digit
    *([_ANY] * 14),  # optional data
    _DIGITS + "<",
    _DIGITS,
)


# Korean passport numbers (ICAO state KOR): a letter, 3 digits, a letter or digit, 4 digits.
_KOR_NUMBER = (_LETTERS[:-1], _DIGITS, _DIGITS, _DIGITS, _ANY[:-1], *([_DIGITS] * 4))


@cache
def _mask(allowed: str) -> npt.NDArray[np.bool_]:
    return np.asarray([c in allowed for c in MRZ_ALPHABET])


def line_scores(
    ink: npt.NDArray[np.bool_], shade: F32, allowed: tuple[str, ...], count: int = _LINE_CHARS
) -> F32:
    """Per cell of the line, the correlation with each of the 37 glyphs (`-inf` where ICAO
    does not allow the glyph at that position), at the line geometry that fits best; an empty
    array when nothing is glyph-like."""
    fits = _line_fits(ink, shade, allowed, count)
    return fits[0] if fits else np.zeros((0, len(MRZ_ALPHABET)), np.float32)


def _line_fits(
    ink: npt.NDArray[np.bool_], shade: F32, allowed: tuple[str, ...], count: int
) -> list[F32]:
    """`line_scores` at each line geometry tried (top and bottom edges moved by up to two
    pixels), the best fitting first; empty when nothing on the line is glyph-like.

    The measured top and bottom are medians over glyphs and fillers, which blur and a slight
    tilt move by a pixel or two, and a wrong cap height makes every template the wrong size
    (3 read as 8, `<` as K): the geometry whose glyphs fit best on average is taken."""
    line_height = int(np.flatnonzero(ink.any(axis=1)).size)
    ink = _glyph_ink(ink, line_height)
    if not ink.any():  # nothing glyph-like on the line: an empty reading fails the parse
        return []
    # The glyphs' own grey levels (a pixel's neighbourhood of them), nothing else on the page.
    near = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    shade = np.where(near, shade, 0).astype(np.float32)
    spans = _blobs(ink, line_height, count) or _even_cells(ink, line_height, count)
    top, bottom, pitch = _geometry(ink, spans)
    masks = np.stack([_mask(chars) for chars in allowed[: len(spans)]])
    fits: list[tuple[float, F32]] = []
    for d_top in _EDGE_SLACK:
        for d_bottom in _EDGE_SLACK:
            t, b = max(0, top + d_top), bottom + d_bottom
            if b - t < _MIN_LINE_PX:
                continue
            scores = _scores_at(shade, spans, t, b, pitch)
            scores[~masks] = -np.inf
            fits.append((float(scores.max(axis=1).mean()), scores))
    fits.sort(key=lambda f: -f[0])
    return [scores for _, scores in fits]


_EDGE_SLACK = (-2, -1, 0, 1, 2)  # pixels tried around the measured top and bottom of a line
# The best fitting geometries whose readings vote on each glyph.
_STABLE_FITS = 5


def _scores_at(shade: F32, spans: list[Span], top: int, bottom: int, pitch: float) -> F32:
    """Every cell's best correlation with each glyph, for one line geometry."""
    templates = _templates(bottom - top)
    best = np.full((len(spans), len(MRZ_ALPHABET)), -np.inf, np.float32)
    for shift in (-1, 0, 1):  # a pixel of slack either way in where a glyph's cell starts
        moved = [(a + shift, b + shift) for a, b in spans]
        # einsum, not `@`: a product this small gains nothing from BLAS threads, which spin
        # for milliseconds when the cores are busy (150 products a page).
        cells = _cell_vectors(shade, moved, top, bottom, pitch)
        scores = np.einsum("ij,kj->ik", cells, templates)
        per_char = scores.reshape(len(spans), len(_BLURS), len(MRZ_ALPHABET)).max(axis=1)
        best = np.maximum(best, per_char)
    return best


def _even_cells(ink: npt.NDArray[np.bool_], line_height: int, count: int) -> list[Span]:
    """`count` equal cells across the line's ink (when its blobs cannot be told apart)."""
    x0, x1 = _extent(ink, line_height)
    # Glyph ink sits inside its cell: the first ink starts about a quarter pitch in, the last
    # ends about a quarter pitch before the cell's end.
    pitch = (x1 - x0) / (count - 0.5)
    start = x0 - 0.25 * pitch
    return [
        (max(0, round(start + i * pitch)), min(ink.shape[1], round(start + (i + 1) * pitch)))
        for i in range(count)
    ]


def read_mrz_lines(page: U8) -> str:
    """The two MRZ lines of a rectified TD3 data page (RGB), as `line1\\nline2`.

    Raises DocumentError(mrz_invalid) when two text lines cannot be found in the MRZ zone.
    """
    return "\n".join(line[0] for line in _readings(page))


def _readings(page: U8) -> list[list[str]]:
    """Per MRZ line, its readings at the best fitting line geometries (best first)."""
    height = page.shape[0]
    band = page[int(height * _BAND_TOP) :]
    grey: U8 = np.asarray(
        cv2.cvtColor(band, cv2.COLOR_RGB2GRAY) if band.ndim == 3 else band, np.uint8
    )
    ink = _ink(grey)
    shade: F32 = (1 - grey.astype(np.float32) / 255).astype(np.float32)
    # The page's own edges (dark borders a rectification may keep) are not print: a column or
    # row that is ink over most of the band is cleared.
    ink[:, ink.mean(axis=0) > 0.6] = False
    ink[ink.mean(axis=1) > 0.6, :] = False
    # Text rows: a row is part of a line when a good share of the widest row's ink is on it.
    counts = ink.sum(axis=1)
    lines = [(a, b) for a, b in _runs(counts > 0.15 * counts.max()) if b - a >= _MIN_LINE_PX]
    # The MRZ is the last two lines of the page (a printed field may stand above them).
    if len(lines) < 2:
        raise DocumentError(ReasonCode.MRZ_INVALID, "no two MRZ lines at the bottom of the page")
    read: list[list[str]] = []
    for top, bottom in lines[-2:]:
        if not read:
            allowed = _LINE1_ALLOWED
        elif read[0][0][2:5] == "KOR":
            allowed = (*_KOR_NUMBER, *_LINE2_ALLOWED[9:])
        else:
            allowed = _LINE2_ALLOWED
        margin = max(1, (bottom - top) // 6)
        rows = slice(max(0, top - margin), bottom + margin)
        fits = _line_fits(ink[rows], shade[rows], allowed, _LINE_CHARS)[:_STABLE_FITS]
        read.append(["".join(MRZ_ALPHABET[i] for i in np.argmax(f, axis=1)) for f in fits] or [""])
    return read


def plausible_line1(line1: str) -> bool:
    return bool(_LINE1.match(line1))


def read_mrz(page: U8, *, today: date) -> TD3 | None:
    """The passport's MRZ when it reads cleanly: every check digit holds (after the parser's
    positional repairs) and line 1 has an MRZ's shape. None otherwise: a misread MRZ is a field
    not read (the document stays unverified), never a reason to reject it."""
    try:
        lines = _readings(page)
    except DocumentError:
        return None
    if len(lines) != 2 or not lines[0][0] or not lines[1][0]:
        return None
    (line1, support1), (line2, support2) = (_vote(readings) for readings in lines)
    # No check digit covers line 1, the nationality or the sex: there a glyph must read the same
    # at all but one of the best fitting geometries (a letter that changes with a pixel of cap
    # height, O or Q, D or O, H or M, is a guess, and a wrong name is worse than none; a bare
    # majority, 3 of 5, once took an M for an H).
    unchecked2 = [support2[i] for i in (10, 11, 12, 20)]
    if min(support1) < len(lines[0]) - 1 or min(unchecked2) < len(lines[1]) - 1:
        return None
    # The check digits choose between the voted line 2 and its reading at each geometry (the
    # unchecked cells kept as voted).
    for reading in dict.fromkeys((line2, *lines[1])):
        trial = reading[:10] + line2[10:13] + reading[13:20] + line2[20] + reading[21:]
        try:
            mrz = parse_td3(f"{line1}\n{trial}", today=today)
        except DocumentError:
            continue
        if mrz.valid and plausible_line1(mrz.line1):
            return mrz
    return None


def _vote(readings: list[str]) -> tuple[str, list[int]]:
    """Per cell, the glyph most readings agree on (the best fitting reading's on a tie), and
    how many readings gave it."""
    out, support = [], []
    for i, first in enumerate(readings[0]):
        column = [r[i] for r in readings if len(r) == len(readings[0])]
        best = max(dict.fromkeys((first, *column)), key=column.count)
        out.append(best)
        support.append(column.count(best))
    return "".join(out), support
