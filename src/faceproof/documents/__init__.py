"""ID documents: types, validation rules, ICAO 9303 TD3 MRZ, privacy helpers, specimens.

Public surface:

- `DocumentType`, `DocumentRead`, `Check`, `PortraitBox`, `FIELD_NAMES` (types.py)
- `DocumentError` (errors.py; an `InputError` with a reason code)
- `validate_document(type, fields, today=...)` -> `DocumentRead` (checks.py)
- registration / licence / passport number and date rules (validators.py)
- `parse_td3`, `generate_td3`, `check_digit`, `cross_check` (mrz.py)
- `pseudonymise`, `mask_rrn`, `mask_number` (privacy.py)
- `render_specimen`, `photograph` (specimen.py; imports Pillow fonts lazily)
- `locate_card`, `rectify` (locate.py; OpenCV)
- `TesseractOcr`, `read_number`, `read_fields` (ocr.py; tesserocr, imported lazily)
- `cut_portrait`, `check_portrait` (portrait.py)
- `read_document(photo, today=, kor=, eng=, detector=, issuer=)` (read.py): photo in,
  DocumentRead out
- `IssuerCheck`, `HttpIssuerCheck`, `IssuerRegistry`, `make_server` (issuer.py): 진위확인

The image and network modules (specimen, locate, ocr, portrait, read, issuer) are imported
from their own modules, so `import faceproof.documents` stays light (no OpenCV, Pillow fonts,
Tesseract or httpx).

Card images are processed in memory only; raw registration numbers are masked in every repr
and in `DocumentRead.to_dict()` unless the caller asks for them.
"""

from faceproof.documents.checks import REQUIRED_FIELDS, validate_document
from faceproof.documents.errors import DocumentError
from faceproof.documents.mrz import TD3, check_digit, cross_check, generate_td3, parse_td3
from faceproof.documents.privacy import mask_number, mask_rrn, pseudonymise
from faceproof.documents.types import (
    FIELD_NAMES,
    Check,
    DocumentRead,
    DocumentType,
    PortraitBox,
)
from faceproof.documents.validators import (
    check_dates,
    check_licence_number,
    check_passport_number,
    check_registration_number,
    parse_licence_number,
    parse_registration_number,
    rrn_check_digit,
)

__all__ = [
    "FIELD_NAMES",
    "REQUIRED_FIELDS",
    "TD3",
    "Check",
    "DocumentError",
    "DocumentRead",
    "DocumentType",
    "PortraitBox",
    "check_dates",
    "check_digit",
    "check_licence_number",
    "check_passport_number",
    "check_registration_number",
    "cross_check",
    "generate_td3",
    "mask_number",
    "mask_rrn",
    "parse_licence_number",
    "parse_registration_number",
    "parse_td3",
    "pseudonymise",
    "rrn_check_digit",
    "validate_document",
]
