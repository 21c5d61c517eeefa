"""Privacy: signed receipts and pseudonymous subject ids. No biometric data anywhere."""

from faceproof.privacy.pseudonym import subject_id
from faceproof.privacy.receipts import ReceiptError, ReceiptSigner, verify_receipt

__all__ = ["ReceiptError", "ReceiptSigner", "subject_id", "verify_receipt"]
