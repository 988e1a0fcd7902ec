"""Email addresses and free-text fields: validation, normalisation and hashing.

`normalise_address` is the one gate every address passes (sign-up, import, CLI): it uses
email-validator (no DNS unless asked) and returns the form we store. `clean_text` refuses
control characters (CR and LF above all: they would inject mail headers).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from .errors import InvalidAddress, InvalidField

__all__ = ["normalise_address", "address_hash", "clean_text", "MAX_NAME"]

MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def normalise_address(raw: str, *, check_deliverability: bool = False) -> str:
    """The stored form of an address: trimmed, validated, domain lower-cased.

    The local part keeps its case (RFC 5321 allows it to matter) but comparisons are
    case-insensitive: the whole address is lower-cased, which is what every large mailbox
    provider does. Raises InvalidAddress with email-validator's reason.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress(raw or "", "the address is empty")
    if _CONTROL.search(text):
        raise InvalidAddress(raw, "the address contains control characters")
    try:
        info = validate_email(text, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidAddress(text, str(exc)) from None
    return info.normalized.lower()


def address_hash(address: str) -> str:
    """SHA-256 of the normalised address: what the suppression list keeps of a person."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def clean_text(field: str, value: str | None, *, max_length: int = MAX_NAME) -> str:
    """`value` trimmed and NFC-normalised; raises InvalidField for control characters or length."""
    text = unicodedata.normalize("NFC", (value or "").strip())
    if _CONTROL.search(text):
        raise InvalidField(field, "control characters (such as line breaks) are not allowed")
    if len(text) > max_length:
        raise InvalidField(field, f"at most {max_length} characters, not {len(text)}")
    return text
