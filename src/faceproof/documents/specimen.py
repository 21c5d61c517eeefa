"""Synthetic specimen cards for tests and demos: every document type, with ground truth.

`render_specimen(type, seed=...)` draws a flat card with Pillow and the fonts-nanum fonts:
ID-1 cards at 1012 x 638 px (85.6 x 54 mm at about 300 dpi), passports as a TD3 data page at
1012 x 712 px (125 x 88 mm) with a valid MRZ built by `mrz.generate_td3`. Every card carries a
"견본 SPECIMEN" mark. The data (names, numbers, dates, addresses) is drawn from small built-in
lists with `random.Random(seed)`, so a seed always gives the same card. Registration numbers
have a valid check digit (pre-October-2020 style) and can coincide with a real person's number
only by chance: they are specimens, marked as such, and never come from real data.

`photograph(specimen, seed=...)` places the card on a background with a random perspective,
slight rotation, blur, uneven light, noise and JPEG compression (numpy Generator seeded), and
returns the photo with the card's four corners (top-left, top-right, bottom-right, bottom-left).

The ground truth is `Specimen.fields` (stable field names, ISO dates) plus the portrait box and
one box per printed field (`field_boxes`, for per-field OCR regions). `nationality` is the ICAO
3-letter code even where the card prints the country's name (KOR: "REPUBLIC OF KOREA").
Nothing is written to disk here; the CLI writes files only when the user asks for them.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from faceproof.documents.mrz import generate_td3
from faceproof.documents.types import MONTHS, DocumentType, PortraitBox
from faceproof.documents.validators import rrn_check_digit
from faceproof.errors import ServiceError
from faceproof.reasons import ReasonCode

__all__ = [
    "CARD_SIZE",
    "PASSPORT_SIZE",
    "Photo",
    "Specimen",
    "photograph",
    "render_specimen",
]

CARD_SIZE: Final = (1012, 638)  # ID-1, 85.6 x 54 mm
PASSPORT_SIZE: Final = (1012, 712)  # TD3 data page, 125 x 88 mm
FONT_DIR: Final = Path("/usr/share/fonts/truetype/nanum")
Box = tuple[int, int, int, int]  # x, y, width, height
Corners = tuple[tuple[float, float], ...]

_SURNAMES: Final = (
    ("김", "KIM"),
    ("이", "LEE"),
    ("박", "PARK"),
    ("최", "CHOI"),
    ("정", "JUNG"),
    ("강", "KANG"),
    ("조", "CHO"),
    ("윤", "YOON"),
    ("장", "JANG"),
    ("임", "LIM"),
    ("한", "HAN"),
    ("오", "OH"),
    ("서", "SEO"),
    ("신", "SHIN"),
    ("권", "KWON"),
)
_SYLLABLES: Final = (
    ("민", "MIN"),
    ("서", "SEO"),
    ("지", "JI"),
    ("현", "HYUN"),
    ("수", "SU"),
    ("영", "YOUNG"),
    ("준", "JUN"),
    ("하", "HA"),
    ("은", "EUN"),
    ("우", "WOO"),
    ("도", "DO"),
    ("예", "YE"),
    ("진", "JIN"),
    ("호", "HO"),
    ("연", "YEON"),
    ("성", "SEONG"),
    ("혜", "HYE"),
    ("재", "JAE"),
    ("윤", "YUN"),
    ("아", "A"),
)
_FOREIGNERS: Final = (
    ("NGUYEN VAN AN", "VNM"),
    ("TRAN THI MAI", "VNM"),
    ("WANG XIAOMING", "CHN"),
    ("LI NA", "CHN"),
    ("MARIA SANTOS", "PHL"),
    ("JOHN SMITH", "USA"),
    ("SITI AMINAH", "IDN"),
    ("BATBAYAR GANBOLD", "MNG"),
    ("SOMCHAI SRISUK", "THA"),
    ("AIGUL NURLANOVA", "KAZ"),
)
_ADDRESSES: Final = (
    ("서울특별시", "종로구", "세종대로 209"),
    ("서울특별시", "중구", "세종대로 110"),
    ("부산광역시", "연제구", "중앙대로 1001"),
    ("대구광역시", "중구", "공평로 88"),
    ("인천광역시", "남동구", "정각로 29"),
    ("광주광역시", "서구", "내방로 111"),
    ("대전광역시", "서구", "둔산로 100"),
    ("울산광역시", "남구", "중앙로 201"),
    ("경기도", "수원시 팔달구", "효원로 1"),
    ("강원특별자치도", "춘천시", "중앙로 1"),
)
_LICENCE_CLASSES: Final = ("1종 대형", "1종 보통", "2종 보통", "2종 소형")
_STATUSES: Final = ("E-9", "F-4", "D-2", "F-5", "E-7", "H-2")
_MERIT: Final = ("국가유공자", "전몰군경유족", "참전유공자", "보훈보상대상자")
_DISABILITY: Final = ("심한 장애", "심하지 않은 장애")
_TINT: Final[dict[DocumentType, tuple[int, int, int]]] = {
    DocumentType.KR_RESIDENT_CARD: (226, 236, 246),
    DocumentType.KR_DRIVER_LICENSE: (240, 232, 222),
    DocumentType.KR_RESIDENCE_CARD: (222, 238, 240),
    DocumentType.KR_MERIT_CARD: (246, 238, 212),
    DocumentType.KR_DISABILITY_CARD: (226, 242, 226),
    DocumentType.PASSPORT: (238, 230, 240),
}
_TITLES: Final[dict[DocumentType, tuple[str, str]]] = {
    DocumentType.KR_RESIDENT_CARD: ("주민등록증", ""),
    DocumentType.KR_DRIVER_LICENSE: ("자동차운전면허증", "Driver's License"),
    DocumentType.KR_RESIDENCE_CARD: ("외국인등록증", "RESIDENCE CARD"),
    DocumentType.KR_MERIT_CARD: ("국가유공자증", ""),
    DocumentType.KR_DISABILITY_CARD: ("장애인등록증", ""),
    DocumentType.PASSPORT: ("여권", "PASSPORT"),
}


@dataclass(frozen=True, slots=True, eq=False)
class Specimen:
    """A flat synthetic card and its ground truth (fields under the stable names)."""

    type: DocumentType
    image: Image.Image = field(repr=False)
    fields: dict[str, str] = field(repr=False)
    portrait: PortraitBox
    field_boxes: dict[str, Box] = field(repr=False)
    seed: int

    def ground_truth(self) -> dict[str, object]:
        return {
            "synthetic": True,
            "type": self.type.value,
            "seed": self.seed,
            "size": list(self.image.size),
            "fields": dict(self.fields),
            "portrait": {"box": self.portrait.as_list()},
            "field_boxes": {k: list(v) for k, v in self.field_boxes.items()},
        }


@dataclass(frozen=True, slots=True, eq=False)
class Photo:
    """A "photographed" specimen: the photo and the card's corners in it (TL, TR, BR, BL)."""

    image: Image.Image = field(repr=False)
    corners: Corners
    specimen: Specimen
    seed: int

    def ground_truth(self) -> dict[str, object]:
        out = self.specimen.ground_truth()
        out["photo"] = {
            "seed": self.seed,
            "size": list(self.image.size),
            "corners": [[round(x, 2), round(y, 2)] for x, y in self.corners],
        }
        return out


OCRB_FONT = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
MRZ_LINE_PX = 905  # 44 x 2.54 mm on the 1012 px (125 mm) wide page
MRZ_LEFT_PX = 54


@cache
def _load_font(path: Path, size: int, package: str) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise ServiceError(
            ReasonCode.INTERNAL_ERROR,
            f"font {path} not found: install {package} (scripts/setup.sh)",
        ) from exc


def mrz_font(size: int) -> ImageFont.FreeTypeFont:
    return _load_font(OCRB_FONT, size, "fonts-ocr-b")


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return _load_font(FONT_DIR / name, size, "fonts-nanum")


# --- data ---------------------------------------------------------------------------------


def _random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _korean_name(rng: random.Random) -> tuple[str, str]:
    sur_ko, sur_en = rng.choice(_SURNAMES)
    given = rng.sample(_SYLLABLES, 2)
    return sur_ko + "".join(g[0] for g in given), f"{sur_en} {''.join(g[1] for g in given)}"


def _registration_number(
    rng: random.Random, birth: date, sex: str, *, foreigner: bool, post_2020: bool
) -> str:
    base = {(False, 1900): 1, (False, 2000): 3, (True, 1900): 5, (True, 2000): 7}
    digit = base[(foreigner, 1900 if birth.year < 2000 else 2000)] + (sex == "F")
    first12 = (
        birth.strftime("%y%m%d") + str(digit) + "".join(str(rng.randint(0, 9)) for _ in range(5))
    )
    check = rrn_check_digit(first12, foreigner=foreigner)
    if post_2020:  # random last digit, as numbers issued since October 2020 may have
        check = (check + rng.randint(1, 9)) % 10
    return f"{first12[:6]}-{first12[6:]}{check}"


def _make_fields(
    doc_type: DocumentType, rng: random.Random, today: date, *, expired: bool, post_2020: bool
) -> dict[str, str]:
    sex = rng.choice("MF")
    birth = _random_date(rng, date(1950, 1, 1), _add_years(today, -20))
    # Cards issued within the last 9 years, at least 18 years after birth.
    issue = _random_date(
        rng, max(_add_years(birth, 18), _add_years(today, -9)), today - timedelta(days=30)
    )
    if expired:
        issue = _add_years(issue, -11)
    f: dict[str, str] = {
        "sex": sex,
        "birth_date": birth.isoformat(),
        "issue_date": issue.isoformat(),
    }
    city, district, street = rng.choice(_ADDRESSES)
    address = f"{city} {district} {street}"
    if doc_type is DocumentType.KR_RESIDENCE_CARD:
        name_latin, nationality = rng.choice(_FOREIGNERS)
        f |= {"name_latin": name_latin, "nationality": nationality, "address": address}
        f["number"] = _registration_number(rng, birth, sex, foreigner=True, post_2020=post_2020)
        f["expiry_date"] = (_add_years(issue, 10) - timedelta(days=1)).isoformat()
        f["issuer"] = "서울출입국·외국인청장"
        return f
    name_ko, name_latin = _korean_name(rng)
    f["name_ko"] = name_ko
    if doc_type is DocumentType.PASSPORT:
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        number = f"M{rng.randint(0, 999):03d}{rng.choice(letters)}{rng.randint(0, 9999):04d}"
        expiry = _add_years(issue, 10) - timedelta(days=1)
        surname, given = name_latin.split(" ", 1)
        l1, l2 = generate_td3(
            issuing_state="KOR", surname=surname, given_names=given, document_number=number,
            nationality="KOR", birth_date=birth, sex=sex, expiry_date=expiry,
        )  # fmt: skip
        f |= {"name_latin": name_latin, "number": number, "nationality": "KOR",
              "expiry_date": expiry.isoformat(), "issuer": "MINISTRY OF FOREIGN AFFAIRS",
              "mrz": f"{l1}\n{l2}"}  # fmt: skip
        return f
    f["number"] = _registration_number(rng, birth, sex, foreigner=False, post_2020=post_2020)
    f["address"] = address
    if doc_type is DocumentType.KR_DRIVER_LICENSE:
        first = _random_date(rng, _add_years(birth, 18), issue)
        region = rng.choice((*range(11, 27), 28))
        f["license_number"] = (
            f"{region}-{first.year % 100:02d}-{rng.randint(0, 999999):06d}-{rng.randint(0, 99):02d}"
        )
        f["license_class"] = rng.choice(_LICENCE_CLASSES)
        f["expiry_date"] = date(issue.year + 10, 12, 31).isoformat()
        f["issuer"] = f"{city}경찰청장"
    elif doc_type is DocumentType.KR_MERIT_CARD:
        f["issuer"] = "국가보훈부장관"
    else:
        f["issuer"] = (
            f"{city} {district.split(' ')[0]}{'청장' if district.endswith('구') else '장'}"
        )
    return f


# --- drawing ------------------------------------------------------------------------------


def _dot(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.year}.{d.month:02d}.{d.day:02d}."


def _en(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day:02d} {MONTHS[d.month - 1]} {d.year}"


class _Canvas:
    def __init__(self, doc_type: DocumentType, size: tuple[int, int], rng: random.Random) -> None:
        self.image = Image.new("RGB", size, _TINT[doc_type])
        self.draw = ImageDraw.Draw(self.image)
        self.boxes: dict[str, Box] = {}
        self._background(doc_type, rng)

    def _background(self, doc_type: DocumentType, rng: random.Random) -> None:
        w, h = self.image.size
        tint = np.array(_TINT[doc_type], dtype=np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = rng.uniform(0, 6.28)
        wave = 6 * np.sin(xx / 23.0 + phase) * np.cos(yy / 31.0) + 10 * (xx / w - 0.5)
        px = np.clip(tint[None, None, :] + wave[..., None], 0, 255).astype(np.uint8)
        self.image.paste(Image.fromarray(px))
        self.draw = ImageDraw.Draw(self.image)
        self.draw.rectangle((0, 0, w - 1, h - 1), outline=(150, 150, 160), width=3)

    def text(self, xy: tuple[int, int], text: str, size: int, *, bold: bool = False,
             serif: bool = False, fill: tuple[int, int, int] = (20, 20, 30),
             name: str | None = None) -> Box:  # fmt: skip
        font_name = ("NanumMyeongjo" if serif else "NanumGothic") + ("Bold" if bold else "")
        font = _font(font_name + ".ttf", size)
        self.draw.text(xy, text, font=font, fill=fill)
        x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=font)
        box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        if name is not None:
            self.boxes[name] = box
        return box

    def mono(self, xy: tuple[int, int], text: str, size: int, name: str) -> None:
        # The MRZ typeface of real passports (ICAO 9303-3): OCR-B (Debian's fonts-ocr-b).
        font = mrz_font(size)
        self.draw.text(xy, text, font=font, fill=(10, 10, 10))
        x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=font)
        self.boxes[name] = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))

    def label(self, xy: tuple[int, int], text: str, size: int = 22) -> None:
        self.text(xy, text, size, fill=(90, 90, 110))

    def portrait(self, face: Image.Image, box: Box) -> PortraitBox:
        x, y, w, h = box
        self.image.paste(_fit(face, w, h), (x, y))
        self.draw.rectangle((x - 1, y - 1, x + w, y + h), outline=(120, 120, 130), width=2)
        return PortraitBox(x, y, w, h)

    def specimen_mark(self) -> None:
        w, h = self.image.size
        mark = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(mark)
        xy = (800, 516) if h == PASSPORT_SIZE[1] else (w - 236, 14)
        d.text(xy, "견본 SPECIMEN", font=_font("NanumGothicBold.ttf", 28), fill=(200, 40, 40, 120))
        self.image.paste(Image.alpha_composite(self.image.convert("RGBA"), mark).convert("RGB"))
        self.draw = ImageDraw.Draw(self.image)


def _fit(face: Image.Image, w: int, h: int) -> Image.Image:
    """Centre-crop the face image to the box's aspect (keeping the top) and resize."""
    face = face.convert("RGB")
    fw, fh = face.size
    if fw / fh > w / h:
        cw = round(fh * w / h)
        face = face.crop(((fw - cw) // 2, 0, (fw - cw) // 2 + cw, fh))
    else:
        ch = round(fw * h / w)
        top = min((fh - ch) // 4, fh - ch)
        face = face.crop((0, top, fw, top + ch))
    return face.resize((w, h), Image.Resampling.LANCZOS)


def _pick(number: str) -> random.Random:
    """A generator seeded by the card's number, for decorative printed values."""
    return random.Random(number)  # noqa: S311 - synthetic data, not security


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def _draw_id1(c: _Canvas, t: DocumentType, f: dict[str, str], face: Image.Image) -> PortraitBox:
    title, subtitle = _TITLES[t]
    left_photo = t in (DocumentType.KR_DRIVER_LICENSE, DocumentType.KR_RESIDENCE_CARD,
                       DocumentType.KR_DISABILITY_CARD)  # fmt: skip
    pbox: Box = (50, 150, 230, 296) if left_photo else (730, 150, 230, 296)
    x = 320 if left_photo else 60
    c.text((x if left_photo else 60, 40), title, 58, bold=True, name="title")
    if subtitle:
        c.text((x if left_photo else 60, 110), subtitle, 26, fill=(70, 70, 90))
    portrait = c.portrait(face, pbox)
    y = 160
    if t is DocumentType.KR_DRIVER_LICENSE:
        c.text((x, y - 10), f["license_class"], 30, bold=True, name="license_class")
        c.text((x + 200, y - 10), f["license_number"], 38, bold=True, name="license_number")
        y += 60
    if "name_ko" in f:
        c.text((x, y), f["name_ko"], 50, bold=True, name="name_ko")
        y += 72
    if "name_latin" in f:
        c.label((x, y), "성명 Name")
        c.text((x + 130, y - 6), f["name_latin"], 36, bold=True, name="name_latin")
        y += 56
    c.text((x, y), f["number"], 42, name="number")
    y += 64
    if "nationality" in f:
        c.label((x, y + 4), "국가/지역 Nationality")
        c.text((x + 230, y - 2), f["nationality"], 32, name="nationality")
        c.label((x + 360, y + 4), "체류자격 Status")
        c.text((x + 520, y - 2), _pick(f["number"]).choice(_STATUSES), 32)
        y += 52
    if t is DocumentType.KR_MERIT_CARD:
        c.text((x, y), _pick(f["number"]).choice(_MERIT), 30, bold=True)
        y += 48
    if t is DocumentType.KR_DISABILITY_CARD:
        c.text((x, y), _pick(f["number"]).choice(_DISABILITY), 30, bold=True)
        y += 48
    if "address" in f:
        lines = _wrap(f["address"], 18 if not left_photo else 22)
        c.text((x, y), "\n".join(lines), 28, name="address")
        y += 40 * len(lines) + 8
    if "expiry_date" in f:
        c.label((x, 510), "유효기간 Expiry" if t is not DocumentType.KR_DRIVER_LICENSE
                else "적성검사기간 ~")  # fmt: skip
        c.text((x + 200, 504), _dot(f["expiry_date"]), 30, name="expiry_date")
    issue_x = 420 if not left_photo else x
    c.text((issue_x, 468), _dot(f["issue_date"]), 30, name="issue_date")
    c.text((issue_x, 560), f["issuer"], 34, bold=True, serif=True, name="issuer")
    return portrait


def _draw_passport(c: _Canvas, f: dict[str, str], face: Image.Image) -> PortraitBox:
    c.text((40, 24), "대한민국 REPUBLIC OF KOREA", 30, bold=True)
    c.text((640, 20), "여권 PASSPORT", 36, bold=True, name="title")
    portrait = c.portrait(face, (40, 110, 250, 320))
    surname, given = f["name_latin"].split(" ", 1)
    x1, x2 = 320, 660
    rows: Sequence[tuple[int, int, str, str, str | None]] = (
        (x1, 90, "종류/Type", "P", None),
        (x1 + 150, 90, "발행국/Issuing country", "KOR", None),
        (x2, 90, "여권번호/Passport No.", f["number"], "number"),
        (x1, 160, "성/Surname", surname, None),
        (x1, 230, "이름/Given names", given, None),
        (x1, 300, "한글성명", f["name_ko"], "name_ko"),
        (x2, 300, "국적/Nationality", "REPUBLIC OF KOREA", "nationality"),
        (x1, 370, "생년월일/Date of birth", _en(f["birth_date"]), "birth_date"),
        (x2, 370, "성별/Sex", f["sex"], "sex"),
        (x1, 440, "발급일/Date of issue", _en(f["issue_date"]), "issue_date"),
        (x2, 440, "기간만료일/Date of expiry", _en(f["expiry_date"]), "expiry_date"),
        (x1, 510, "발행관청/Authority", "MINISTRY OF FOREIGN AFFAIRS", "issuer"),
    )
    for x, y, label, value, name in rows:
        c.label((x, y), label, 18)
        c.text((x, y + 24), value, 30, bold=True, name=name)
    # Surname and given names are printed on two rows: name_latin's box spans both.
    c.boxes["name_latin"] = (x1, 184, 500, 100)
    l1, l2 = f["mrz"].split("\n")
    # ICAO 9303-3: 44 characters at a 2.54 mm pitch (111.8 mm of the page's 125 mm).
    size = round(100 * MRZ_LINE_PX / mrz_font(100).getlength("<" * 44))
    c.mono((MRZ_LEFT_PX, 598), l1, size, "mrz_line1")
    c.mono((MRZ_LEFT_PX, 648), l2, size, "mrz_line2")
    return portrait


def render_specimen(
    doc_type: DocumentType,
    *,
    seed: int = 0,
    portrait: Image.Image | None = None,
    today: date | None = None,
    expired: bool = False,
    post_2020: bool = False,
) -> Specimen:
    """Draw one flat synthetic card of `doc_type` (see the module docstring).

    `today` anchors the random dates (default: the real date); `expired=True` makes a card
    whose expiry lies in the past (types with an expiry date); `post_2020=True` gives the
    registration number a random last digit, as numbers issued since October 2020 may have.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    today = today or date.today()
    if portrait is None:
        from faceproof.examples import example_portrait

        # Head and shoulders of the 512 x 512 astronaut portrait, at the 3:4 photo aspect.
        portrait = example_portrait().crop((96, 0, 384, 384))
    fields = _make_fields(doc_type, rng, today, expired=expired, post_2020=post_2020)
    size = PASSPORT_SIZE if doc_type is DocumentType.PASSPORT else CARD_SIZE
    canvas = _Canvas(doc_type, size, rng)
    if doc_type is DocumentType.PASSPORT:
        box = _draw_passport(canvas, fields, portrait)
    else:
        box = _draw_id1(canvas, doc_type, fields, portrait)
    canvas.specimen_mark()
    return Specimen(doc_type, canvas.image, fields, box, dict(canvas.boxes), seed)


def photograph(
    specimen: Specimen,
    *,
    seed: int = 0,
    size: tuple[int, int] = (1600, 1200),
    jpeg_quality: tuple[int, int] = (70, 90),
    glare: tuple[float, float] | None = None,
) -> Photo:
    """Place the card on a background with perspective, rotation, blur, light, noise, JPEG.

    `glare` = (u, v), a point of the card (fractions of its width and height): a specular
    highlight of the lamp on the laminate there, washing out what is printed under it."""
    gen = np.random.default_rng(seed)
    width, height = size
    card = np.asarray(specimen.image.convert("RGB"), dtype=np.uint8)
    ch, cw = card.shape[:2]
    photo = _background(gen, width, height)
    # Card width 55-75 % of the photo, centred with a random offset, rotated up to +-8 degrees,
    # each corner jittered by up to 5 % of the card width (perspective).
    scale = gen.uniform(0.55, 0.75) * width / cw
    w, h = cw * scale, ch * scale
    cx = width / 2 + gen.uniform(-0.08, 0.08) * width
    cy = height / 2 + gen.uniform(-0.08, 0.08) * height
    angle = np.deg2rad(gen.uniform(-8, 8))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    dst = base @ rot.T + np.array([cx, cy]) + gen.uniform(-0.05, 0.05, (4, 2)) * w
    dst = _fit_inside(dst, width, height, margin=0.03)
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(card, matrix, (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), matrix, (width, height))
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    out = photo * (1 - alpha) + warped.astype(np.float32) * alpha
    # Uneven light: a smooth gain field 0.7-1.15 from a random direction.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = gen.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * (xx / width - 0.5) + np.sin(theta) * (yy / height - 0.5)) * 2
    out *= (0.92 + gen.uniform(0.08, 0.22) * ramp)[..., None]
    if glare is not None:
        # The highlight's own random draws must not shift the photo's: a separate generator.
        spot = cv2.perspectiveTransform(
            np.array([[[glare[0] * cw, glare[1] * ch]]], np.float32), matrix
        )[0, 0]
        radius = np.random.default_rng(seed + 7919).uniform(0.09, 0.13) * w
        dist2 = (xx - spot[0]) ** 2 + (yy - spot[1]) ** 2
        out += (400 * np.exp(-dist2 / (2 * radius**2)) * alpha[..., 0])[..., None]
    blurred = np.asarray(cv2.GaussianBlur(out, (0, 0), gen.uniform(0.6, 1.4)), np.float32)
    noisy = blurred + gen.normal(0, gen.uniform(2, 6), blurred.shape).astype(np.float32)
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(gen.integers(*jpeg_quality, endpoint=True)))
    photo_img = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    corners = tuple((float(x), float(y)) for x, y in dst)
    return Photo(photo_img, corners, specimen, seed)


def _fit_inside(
    pts: npt.NDArray[np.float64], width: int, height: int, *, margin: float
) -> npt.NDArray[np.float64]:
    """Shrink and shift the corners so the whole card lies inside the photo, with a margin."""
    lo = np.array([width * margin, height * margin])
    hi = np.array([width * (1 - margin), height * (1 - margin)])
    pmin, pmax = pts.min(axis=0), pts.max(axis=0)
    scale = min(1.0, float(np.min((hi - lo) / (pmax - pmin))))
    centre = (pmin + pmax) / 2
    pts = centre + (pts - centre) * scale
    pmin, pmax = pts.min(axis=0), pts.max(axis=0)
    shift = np.maximum(lo - pmin, 0) - np.maximum(pmax - hi, 0)
    out: npt.NDArray[np.float64] = pts + shift
    return out


def _background(gen: np.random.Generator, w: int, h: int) -> npt.NDArray[np.float32]:
    """A table-like background: a dark-to-mid colour with a gradient and a coarse texture."""
    colour = gen.uniform(30, 140, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = 25 * (xx / w - 0.5) + 15 * (yy / h - 0.5)
    coarse = gen.normal(0, 12, (h // 16 + 1, w // 16 + 1)).astype(np.float32)
    texture = np.asarray(cv2.resize(coarse, (w, h)), dtype=np.float32)
    bg = colour[None, None, :] + (grad + texture)[..., None]
    out: npt.NDArray[np.float32] = np.clip(bg, 0, 255).astype(np.float32)
    return out
