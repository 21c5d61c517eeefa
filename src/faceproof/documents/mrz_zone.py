"""Finding a machine-readable zone anywhere in a photo, reading it, and the page around it.

Real passport pages come scanned or photographed up to (or past) their edges, on a page of a
booklet, at any scale and tilt: there is often no card outline for `locate.locate_card`. The
MRZ needs none: it is the one block of 2 or 3 long, parallel, equally long lines of dark OCR-B
print on a document (ICAO 9303-3). So it is searched directly:

1. the photo is scaled to `_WORK_PX` on its long side and dark print is brought out with a
   morphological black-hat (dark details smaller than a glyph on a lighter background);
2. Otsu's threshold, then a horizontal closing that joins a line's glyphs (not its neighbour
   lines) into one blob; every blob far longer than tall is a text line (`cv2.minAreaRect`
   gives its centre, length, height and angle). The photo is also tried turned by 90 degrees
   (a booklet photographed upright);
3. lines of similar length and angle, one below the other at a line pitch, form a zone of 2 or
   3 lines; the longest zones are tried first;
4. each zone is cut out of the full-resolution photo, turned level (and, if that fails, by a
   further 180 degrees), scaled to a line height the OCR-B templates read well, and read by
   `mrz_reader` line by line at each format's length (3 x 30 TD1, 2 x 44 TD3 / MRV-A, 2 x 36
   TD2 / MRV-B), allowing only what ICAO allows at each position;
5. a zone counts only when `mrz.parse_mrz` finds every check digit valid and line 1 has an
   MRZ's shape: otherwise the next zone is tried, and `None` means no MRZ was read.

`page_corners(zone)` then places the TD3 data page (125 x 88 mm) around a passport's MRZ from
the ICAO layout (the MRZ's 44 characters span 111.8 mm; its lines sit at the bottom), for the
portrait cut-out when the page's own edges are not visible.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.documents.errors import DocumentError
from faceproof.documents.locate import Corners
from faceproof.documents.mrz import TD3, parse_mrz
from faceproof.documents.mrz_reader import (
    F32,
    MRZ_ALPHABET,
    U8,
    _ink,
    _runs,
    line_scores,
)

__all__ = ["FoundZone", "find_zone_lines", "page_corners", "read_zone"]

_WORK_PX: Final = 1000  # long side the search runs at
_LINE_HEIGHT_PX: Final = 32  # line height a zone is scaled to before reading
_MAX_ZONES: Final = 5  # zones tried per orientation (the longest first)
_MAX_BAND_PX: Final = 2200  # widest zone cut-out read (44 glyphs at 50 px)
_NEAR_TIE: Final = 0.06  # a runner-up glyph this close in correlation is a second choice
_MAX_SWAPS: Final = 6  # near-ties tried, one or two at a time (at most 21 readings)

_L = "ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
_D = "0123456789"
_A = MRZ_ALPHABET
_CODE = "PIACV"
# What ICAO 9303 allows at each position, per format and line (see mrz.py for the layouts).
_NAME_LINE = {n: (_CODE, _L, *([_L] * (n - 2))) for n in (30, 36, 44)}
_LINE2_TWO = {
    "TD3": (*[_A] * 9, _D, *[_L] * 3, *[_D] * 7, "MFX<", *[_D] * 7, *[_A] * 14, _D + "<", _D),
    "TD2": (*[_A] * 9, _D, *[_L] * 3, *[_D] * 7, "MFX<", *[_D] * 7, *[_A] * 7, _D),
    "MRV-A": (*[_A] * 9, _D, *[_L] * 3, *[_D] * 7, "MFX<", *[_D] * 7, *[_A] * 16),
    "MRV-B": (*[_A] * 9, _D, *[_L] * 3, *[_D] * 7, "MFX<", *[_D] * 7, *[_A] * 8),
}
_TD1 = (
    (_CODE, _L, *[_L] * 3, *[_A] * 9, _D + "<", *[_A] * 15),
    (*[_D] * 7, "MFX<", *[_D] * 7, *[_L] * 3, *[_A] * 11, _D),
    tuple([_L] * 30),
)


# The shapes read; TD3 and MRV-A (2 x 44), TD2 and MRV-B (2 x 36) share one, and line 1's
# document code (`V`: a visa) says which layout line 2 is read with.
_SHAPES: Final = {"TD1": (3, 30), "TD3": (2, 44), "TD2": (2, 36)}
_FAMILY: Final = {"TD1": {"TD1"}, "TD3": {"TD3", "MRV-A"}, "TD2": {"TD2", "MRV-B"}}
_VISA: Final = {"TD3": "MRV-A", "TD2": "MRV-B"}
_ALLOWED: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "TD1": _TD1,
    "TD3": (_NAME_LINE[44], _LINE2_TWO["TD3"]),
    "TD2": (_NAME_LINE[36], _LINE2_TWO["TD2"]),
    "MRV-A": (_NAME_LINE[44], _LINE2_TWO["MRV-A"]),
    "MRV-B": (_NAME_LINE[36], _LINE2_TWO["MRV-B"]),
}
# The name line (line 1 of TD3/TD2/visas, line 3 of TD1): names, `<<` between primary and
# secondary identifier, then fillers. Guards the one line no check digit covers.
_NAME: re.Pattern[str] = re.compile(r"^[A-Z]+(<[A-Z]+)*<<[A-Z]+(<[A-Z]+)*<*$")


@dataclass(frozen=True, slots=True)
class TextLine:
    """One long text line in the photo: centre (x, y), length and height in px, angle in
    degrees (of its long side, in (-90, 90])."""

    centre: tuple[float, float]
    length: float
    height: float
    angle: float


@dataclass(frozen=True, slots=True, repr=False)
class FoundZone:
    """A machine-readable zone read with every check digit valid, and where it is: the
    corners (TL, TR, BR, BL, upright reading order) of its lines' ink in the photo."""

    mrz: TD3
    corners: Corners

    def __repr__(self) -> str:  # the MRZ carries the document number
        return f"FoundZone(format={self.mrz.format!r})"


def _text_lines(grey: U8) -> list[TextLine]:
    """Every blob of print far longer than tall, in `grey`'s pixel coordinates."""
    h, w = grey.shape
    glyph = max(9, round(max(h, w) / 60))  # wider than a stroke, about a glyph at page scale
    dark = cv2.morphologyEx(
        grey, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (glyph, glyph))
    )
    _, binary = cv2.threshold(dark, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Join glyphs across their gaps (fillers `<` stand farther apart than letters): about a
    # glyph's height, measured as the median height of the blobs of print.
    found, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    tall = stats[1:found, cv2.CC_STAT_HEIGHT]
    tall = tall[(tall >= 5) & (tall <= max(h, w) // 20)]
    reach = max(glyph, round(1.3 * float(np.median(tall)))) if tall.size else glyph
    joined = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((1, reach), np.uint8))
    joined = cv2.morphologyEx(joined, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines = []
    for contour in contours:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if rw < rh:
            rw, rh, angle = rh, rw, angle - 90
        while angle <= -90:
            angle += 180
        while angle > 90:
            angle -= 180
        if rw >= 0.2 * max(h, w) and rh >= 4 and rw >= 12 * rh:
            lines.append(TextLine((float(cx), float(cy)), float(rw), float(rh), float(angle)))
    return lines


def find_zone_lines(grey: U8) -> list[list[TextLine]]:
    """Runs of 2-3 parallel lines of similar length, one under the other at a line's pitch:
    the candidate zones, longest first (a run of 3 also gives its 2-line parts: a printed line
    may stand right above a 2-line MRZ). Coordinates are `grey`'s."""
    lines = _text_lines(grey)
    zones: list[list[TextLine]] = []
    seen: set[tuple[int, ...]] = set()
    for first in sorted(lines, key=lambda t: -t.length):
        theta = math.radians(first.angle)
        normal = np.array([-math.sin(theta), math.cos(theta)])
        along = np.array([math.cos(theta), math.sin(theta)])
        group = [first]
        for other in lines:
            if other is first or abs(other.length / first.length - 1) > 0.25:
                continue
            if abs(((other.angle - first.angle + 90) % 180) - 90) > 4:
                continue
            delta = np.subtract(other.centre, first.centre)
            if abs(float(delta @ along)) < 0.15 * first.length:
                group.append(other)
        group.sort(key=lambda t: float(np.asarray(t.centre) @ normal))
        # Only neighbours: consecutive lines of a zone are at most 2.6 line heights apart.
        runs: list[list[TextLine]] = [[group[0]]]
        for line in group[1:]:
            gap = float((np.subtract(line.centre, runs[-1][-1].centre)) @ normal)
            if gap <= 2.6 * max(line.height, runs[-1][-1].height):
                runs[-1].append(line)
            else:
                runs.append([line])
        run = next(r for r in runs if any(t is first for t in r))
        parts = [run[i : i + n] for n in (3, 2) for i in range(len(run) - n + 1)]
        for part in parts[:4]:
            key = tuple(sorted(lines.index(t) for t in part))
            if key not in seen:
                seen.add(key)
                zones.append(part)
    return zones[:_MAX_ZONES]


def _zone_box(zone: list[TextLine]) -> tuple[tuple[float, float], float, float, float]:
    """Centre, length, height (across all lines) and angle of a zone."""
    theta = math.radians(zone[0].angle)
    normal = np.array([-math.sin(theta), math.cos(theta)])
    centres = np.asarray([t.centre for t in zone])
    centre = centres.mean(axis=0)
    offsets = (centres - centre) @ normal
    height = float(offsets.max() - offsets.min()) + max(t.height for t in zone)
    length = max(t.length for t in zone)
    return (float(centre[0]), float(centre[1])), length, height, zone[0].angle


def _cut_level(
    photo: U8, centre: tuple[float, float], length: float, height: float, angle: float, scale: float
) -> U8:
    """The zone's box (plus margins) turned level and scaled by `scale`."""
    margin_x = 0.04 * length + 0.6 * height
    margin_y = 0.35 * height
    width = round((length + 2 * margin_x) * scale)
    tall = round((height + 2 * margin_y) * scale)
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[0, 2] += width / 2 - centre[0]
    matrix[1, 2] += tall / 2 - centre[1]
    out: U8 = np.asarray(
        cv2.warpAffine(
            photo, matrix, (width, tall), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        ),
        np.uint8,
    )
    return out


def _even_light(grey: U8) -> U8:
    """The cut-out divided by its paper (a closing wider than a glyph's stroke removes the
    print): shadows and a lamp's falloff across the zone go, so one threshold fits all of it."""
    size = max(15, grey.shape[0] // 4) | 1
    paper = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    ratio = grey.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    out: U8 = np.asarray(np.clip(ratio * 255.0, 0, 255), np.uint8)
    return out


def _zone_ink(grey: U8) -> npt.NDArray[np.bool_]:
    """Print in a level zone cut-out, without the page's or the photo's edges (a column or
    row that is ink over most of the cut-out)."""
    ink = _ink(grey)
    ink[:, ink.mean(axis=0) > 0.6] = False
    ink[ink.mean(axis=1) > 0.6, :] = False
    # A page edge or a frame line crossing the lines is taller than any glyph.
    found, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    heights = stats[1:found, cv2.CC_STAT_HEIGHT]
    sizable = heights[stats[1:found, cv2.CC_STAT_AREA] >= 20]
    if sizable.size:
        too_tall = np.flatnonzero(heights > 1.8 * float(np.median(sizable))) + 1
        ink[np.isin(labels, too_tall)] = False
    return ink


def _band_lines(ink: npt.NDArray[np.bool_], count: int) -> list[tuple[int, int]] | None:
    """The `count` text rows of a level zone cut-out (most ink), top to bottom."""
    rows = ink.sum(axis=1)
    runs = [(a, b) for a, b in _runs(rows > 0.15 * rows.max()) if b - a >= 6]
    if len(runs) < count:
        return None
    best = sorted(runs, key=lambda r: -int(rows[r[0] : r[1]].sum()))[:count]
    return sorted(best)


def _accept(text: list[str], fmt: str, today: date) -> TD3 | None:
    """The parse when it is of format `fmt`, every check digit holds and the name line has a
    name's shape; else None."""
    try:
        mrz = parse_mrz("\n".join(text), today=today)
    except DocumentError:
        return None
    if mrz.format not in _FAMILY[fmt]:
        return None
    name_line = mrz.line3 if mrz.format == "TD1" else mrz.line1[5:]
    return mrz if mrz.valid and _NAME.match(name_line) else None


# Where the document number is in each format: (line, start, end).
_NUMBER_AT: Final = {"TD1": (0, 5, 14), "TD3": (1, 0, 9), "TD2": (1, 0, 9), "MRV-A": (1, 0, 9),
                     "MRV-B": (1, 0, 9)}  # fmt: skip
_LAST_LETTER: re.Pattern[str] = re.compile(r"[A-NP-Z](?=[^A-NP-Z]*$)")
_O_AMONG_DIGITS: re.Pattern[str] = re.compile(r"(?<=[0-9])O(?=[0-9])")


# Where optional data is in each format: (line, start, end).
_OPTIONAL_AT: Final = {"TD1": ((0, 15, 30), (1, 18, 29)), "TD3": ((1, 28, 42),),
                       "TD2": ((1, 28, 35),), "MRV-A": ((1, 28, 44),),
                       "MRV-B": ((1, 28, 36),)}  # fmt: skip
_DIGITS_AND_O: re.Pattern[str] = re.compile(r"[0-9O]*[0-9][0-9O]*")


def _shape_rules(text: list[str], fmt: str) -> list[str]:
    """What ICAO 9303 fixes by position, applied to a reading before its check digits:
    the name field ends in fillers once three of them follow each other (a name holds at most
    two in a row), an O among the digits of an optional-data group is a 0, and the document
    number's O after its letters is a 0 (`_zeros_in_number`)."""
    out = list(text)
    name_line = 2 if fmt == "TD1" else 0
    start = 0 if fmt == "TD1" else 5
    line = out[name_line]
    tail = line.find("<<<", start)
    if tail >= 0:
        out[name_line] = line[:tail] + "<" * (len(line) - tail)
    for index, begin, end in _OPTIONAL_AT[fmt]:
        field = out[index][begin:end]
        groups = [
            g.replace("O", "0") if _DIGITS_AND_O.fullmatch(g) else g for g in field.split("<")
        ]
        out[index] = out[index][:begin] + "<".join(groups) + out[index][end:]
    return _zeros_in_number(out, fmt)


_TWIN_DIGITS: Final = str.maketrans("OQDILZSGB", "000112568")


def _twins_beside_digits(text: list[str], fmt: str) -> list[str]:
    """A second reading of the document number: a letter with a digit twin (O Q D I L Z S G
    B) next to a digit is that digit (D2314S890 -> D23145890). Tried after the reading as it
    is; the check digit decides."""
    line, start, end = _NUMBER_AT[fmt]
    number = text[line][start:end]
    chars = list(number)
    for i, ch in enumerate(number):
        beside = number[max(0, i - 1) : i] + number[i + 1 : i + 2]
        if ch in "OQDILZSGB" and any(c.isdigit() for c in beside):
            chars[i] = ch.translate(_TWIN_DIGITS)
    out = list(text)
    out[line] = text[line][:start] + "".join(chars) + text[line][end:]
    return out


def _zeros_in_number(text: list[str], fmt: str) -> list[str]:
    """OCR-B's O and 0 differ by a few pixels at a camera's resolution, and the check digit
    cannot always tell them apart (an O read for 0 in two cells can keep its sum). Document
    numbers are mostly letters, then digits (A00051376, ZS0000177, M00000426): an O after the
    number's last other letter, or between two digits (L898902C3), is read as 0."""
    line, start, end = _NUMBER_AT[fmt]
    number = text[line][start:end]
    last = _LAST_LETTER.search(number)
    cut = last.end() if last else 0
    fixed = number[:cut] + number[cut:].replace("O", "0")
    fixed = _O_AMONG_DIGITS.sub("0", fixed)
    out = list(text)
    out[line] = text[line][:start] + fixed + text[line][end:]
    return out


def _second_choices(scores: list[F32]) -> list[tuple[float, int, int, str]]:
    """The cells whose runner-up glyph scores within `_NEAR_TIE` of the best (OCR-B's 0 and
    O, 8 and B, ...): (score lost, line, cell, runner-up), the closest first."""
    out = []
    for line, cells in enumerate(scores):
        top2 = np.argsort(cells, axis=1)[:, -2:]
        for cell, (second, first) in enumerate(top2):
            loss = float(cells[cell, first] - cells[cell, second])
            if np.isfinite(loss) and loss < _NEAR_TIE:
                out.append((loss, line, cell, MRZ_ALPHABET[second]))
    return sorted(out)[:_MAX_SWAPS]


def _read_level(band: U8, today: date, lines: int) -> TD3 | None:
    """Read a level zone cut-out of `lines` lines in every format of that many lines.

    When the best glyph at every cell does not give valid check digits, the near-ties are
    tried in place of the best glyph, one or two at a time (the least total score lost first):
    the check digits, which are what ICAO put there for this, decide. Every such choice must
    still pass every check digit, the composite included."""
    grey: U8 = np.asarray(cv2.cvtColor(band, cv2.COLOR_RGB2GRAY), np.uint8)
    shade: F32 = (1 - grey.astype(np.float32) / 255).astype(np.float32)
    # One threshold over the cut-out as it is, then over it with the light evened out (a
    # shadow across the zone); each reads some specimens the other does not.
    for ink in (_zone_ink(grey), _zone_ink(_even_light(grey))):
        mrz = _read_ink(ink, shade, today, lines)
        if mrz is not None:
            return mrz
    return None


def _first_glyph(scores: F32) -> str:
    return MRZ_ALPHABET[int(np.argmax(scores[0]))]


def _read_ink(ink: npt.NDArray[np.bool_], shade: F32, today: date, lines: int) -> TD3 | None:
    for fmt, (count, width) in _SHAPES.items():
        if count != lines:
            continue
        rows = _band_lines(ink, count)
        if rows is None:
            continue
        scores: list[F32] = []
        for i, (top, bottom) in enumerate(rows):
            layout = fmt
            if i == 1 and fmt in _VISA and scores[0].size and _first_glyph(scores[0]) == "V":
                layout = _VISA[fmt]
            margin = max(1, (bottom - top) // 6)
            cut = slice(max(0, top - margin), bottom + margin)
            scores.append(line_scores(ink[cut], shade[cut], _ALLOWED[layout][i], width))
        if any(s.shape[0] != width for s in scores):
            continue
        text = ["".join(MRZ_ALPHABET[i] for i in np.argmax(s, axis=1)) for s in scores]
        for candidate in (text, _twins_beside_digits(text, fmt)):
            mrz = _accept(_shape_rules(candidate, fmt), fmt, today)
            if mrz is not None:
                return mrz
        text = _shape_rules(text, fmt)
        ties = _second_choices(scores)
        swaps: list[tuple[float, tuple[tuple[float, int, int, str], ...]]]
        swaps = [(t[0], (t,)) for t in ties]
        swaps += [(a[0] + b[0], (a, b)) for a, b in itertools.combinations(ties, 2)]
        for _, chosen in sorted(swaps, key=lambda item: item[0]):
            trial = [list(line) for line in text]
            for _, line, cell, char in chosen:
                if trial[line][cell] == char:  # already changed to it: the best glyph instead
                    char = MRZ_ALPHABET[int(np.argmax(scores[line][cell]))]
                trial[line][cell] = char
            mrz = _accept(_shape_rules(["".join(line) for line in trial], fmt), fmt, today)
            if mrz is not None:
                return mrz
    return None


def read_zone(photo: U8, *, today: date) -> FoundZone | None:
    """The first zone of the photo (RGB) that reads with every check digit valid, or None."""
    h, w = photo.shape[:2]
    scale = _WORK_PX / max(h, w)
    grey: U8 = np.asarray(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), np.uint8)
    small: U8 = np.asarray(
        cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
    )
    for turned in (False, True):
        view = np.ascontiguousarray(np.rot90(small)) if turned else small
        for zone in find_zone_lines(view):
            (cx, cy), length, height, angle = _zone_box(zone)
            if turned:  # back from the turned view (rot90: x' = y, y' = W - 1 - x)
                cx, cy = small.shape[1] - 1 - cy, cx
                angle -= 90
            centre = (cx / scale, cy / scale)
            length, height = length / scale, height / scale
            line_px = height / len(zone)
            zoom = min(4.0, max(0.5, _LINE_HEIGHT_PX / max(1.0, 0.6 * line_px)))
            zoom = min(zoom, _MAX_BAND_PX / length)
            for flip in (0, 180):
                band = _cut_level(photo, centre, length, height, angle + flip, zoom)
                mrz = _read_level(band, today, len(zone))
                if mrz is not None:
                    corners = _box_corners(centre, length, height, angle + flip)
                    return FoundZone(mrz, corners)
    return None


def _box_corners(
    centre: tuple[float, float], length: float, height: float, angle: float
) -> Corners:
    theta = math.radians(angle)
    along = np.array([math.cos(theta), math.sin(theta)])
    down = np.array([-math.sin(theta), math.cos(theta)])
    c = np.asarray(centre)
    half_l, half_h = along * length / 2, down * height / 2
    pts = (c - half_l - half_h, c + half_l - half_h, c + half_l + half_h, c - half_l + half_h)
    return tuple((float(x), float(y)) for x, y in pts)  # type: ignore[return-value]


# TD3 layout (ICAO 9303-4, millimetres): the page is 125 x 88; the MRZ's 44 characters at a
# 2.54 mm pitch span 111.8 mm, starting about 6.6 mm from the left edge; its two lines'
# centres are about 4.2 mm apart, the lower one about 6 mm above the bottom edge.
_PAGE_MM: Final = (125.0, 88.0)
_MRZ_INK_MM: Final = 111.2
_LEFT_MM: Final = 6.9
_BOTTOM_MM: Final = 4.5  # bottom edge of line 2's ink to the page's bottom edge


def page_corners(zone: FoundZone) -> Corners:
    """The TD3 data page's corners (TL, TR, BR, BL) placed around a passport's MRZ."""
    tl, tr, _, bl = (np.asarray(p) for p in zone.corners)
    along = tr - tl
    px_per_mm = float(np.linalg.norm(along)) / _MRZ_INK_MM
    along = along / np.linalg.norm(along)
    down = np.array([-along[1], along[0]])
    page_bl = bl - along * _LEFT_MM * px_per_mm + down * _BOTTOM_MM * px_per_mm
    width, height = (_PAGE_MM[0] * px_per_mm, _PAGE_MM[1] * px_per_mm)
    page_br = page_bl + along * width
    page_tl = page_bl - down * height
    page_tr = page_tl + along * width
    return tuple((float(x), float(y)) for x, y in (page_tl, page_tr, page_br, page_bl))  # type: ignore[return-value]
