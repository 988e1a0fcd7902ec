"""Email addresses and free-text fields: validation, normalisation and hashing.

`normalise_address` is the one gate every address passes (sign-up, import, CLI): it uses
email-validator (no DNS unless asked) and returns the form we store. `canonical_mailbox` is
the mailbox an address reaches, which limits are counted on (the address is stored as given).
`clean_text` refuses control characters (CR and LF above all: they would inject mail headers).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from .errors import InvalidAddress, InvalidField

__all__ = ["normalise_address", "canonical_mailbox", "address_hash", "clean_text", "MAX_NAME"]

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
    if not check_deliverability:
        fast = _plain_address(text)
        if fast is not None:
            return fast
    try:
        info = validate_email(text, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidAddress(text, str(exc)) from None
    return info.normalized.lower()


# Most addresses are plain: an ASCII dot-atom, a domain of letter-digit-hyphen labels and an
# alphabetic top-level domain. For those, email-validator's answer is known (valid; the
# address lower-cased) and costs ~50 µs to compute, which is most of a large import's time.
# `_plain_address` recognises that shape in ~1 µs and answers None for anything else, which
# then goes to email-validator. tests/test_addresses.py holds it to email-validator's answers.
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,63}}",
    re.ASCII,
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _plain_address(text: str) -> str | None:
    """The normalised form of a plain address, or None when email-validator must decide."""
    address = text.lower()
    if len(address) > 254 or not _PLAIN.fullmatch(address):
        return None
    local, _, domain = address.rpartition("@")
    if len(local) > 64 or len(domain) > 253 or "--" in domain:  # "--": IDNA rules, left to the library
        return None
    suffix = domain
    while True:  # the domain and each of its parent domains
        if suffix in _SPECIAL_USE:
            return None
        dot = suffix.find(".")
        if dot < 0:
            return address
        suffix = suffix[dot + 1:]


#: Domains whose mailboxes ignore the dots of the local part (Google documents it for Gmail),
#: googlemail.com being another name of gmail.com. Only these: elsewhere a dot may matter.
_DOTS_IGNORED = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_mailbox(address: str) -> str:
    """The mailbox a (normalised) address reaches, for counting limits, never for storing.

    The sub-address tag goes (`ana+news@x` → `ana@x`: Gmail, Outlook, iCloud, Fastmail, Proton
    and Postfix's default `recipient_delimiter` all deliver those to `ana@x`), and for Gmail
    the dots of the local part too. Over-merging two real mailboxes only makes them share a
    limit; under-merging lets one mailbox be flooded, so the tag goes for every domain.
    """
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _DOTS_IGNORED:
        local, domain = local.replace(".", "") or local, _DOTS_IGNORED[domain]
    return f"{local}@{domain}"


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
