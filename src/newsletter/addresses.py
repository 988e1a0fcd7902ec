"""Email addresses and free-text fields: validation, normalisation and hashing.

`normalise_address` is the one gate every address passes (sign-up, import, CLI): it uses
email-validator (no DNS unless asked) and returns the form we store. `canonical_mailbox` is
the mailbox an address reaches, which limits are counted on (the address is stored as given).
`clean_text` refuses control characters (CR and LF above all: they would inject mail headers);
`has_control` says whether a text holds any; `escape_controls` shows them as escapes, for a
terminal (the CLI prints every stored value through it) or a header kept as evidence.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from .errors import InvalidAddress, InvalidField
from .texts import N_, Text

__all__ = ["normalise_address", "canonical_mailbox", "address_hash", "clean_text", "has_control", "escape_controls",
           "MAX_NAME"]

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
        raise InvalidAddress(raw or "", Text(N_("the address is empty")))
    if _CONTROL.search(text):
        raise InvalidAddress(raw, Text(N_("the address contains control characters")))
    if not check_deliverability:
        fast = _plain_address(text)
        if fast is not None:
            return fast
    try:
        info = validate_email(text, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidAddress(text, _refusal(str(exc))) from None
    return info.normalized.lower()


#: email-validator's commonest refusals as catalogue ids, in its own English words (so that
#: `str(error)` is what it says), the characters it names kept as a value.
_REFUSALS = tuple((re.compile(pattern), template) for pattern, template in (
    (r"An email address must have an @-sign\.", N_("An email address must have an @-sign.")),
    (r"There must be something before the @-sign\.", N_("There must be something before the @-sign.")),
    (r"There must be something after the @-sign\.", N_("There must be something after the @-sign.")),
    (r"An email address cannot have two periods in a row\.", N_("An email address cannot have two periods in a row.")),
    (r"An email address cannot start with a period\.", N_("An email address cannot start with a period.")),
    (r"An email address cannot have a period immediately before the @-sign\.",
     N_("An email address cannot have a period immediately before the @-sign.")),
    (r"The part after the @-sign is not valid\. It should have a period\.",
     N_("The part after the @-sign is not valid. It should have a period.")),
    (r"The part after the @-sign is not valid\. It is not within a valid top-level domain\.",
     N_("The part after the @-sign is not valid. It is not within a valid top-level domain.")),
    (r"The part after the @-sign is a special-use or reserved name that cannot be used with email\.",
     N_("The part after the @-sign is a special-use or reserved name that cannot be used with email.")),
    (r"The email address contains invalid characters before the @-sign: (?P<characters>.+)\.",
     N_("The email address contains invalid characters before the @-sign: %(characters)s.")),
    (r"The part after the @-sign contains invalid characters: (?P<characters>.+)\.",
     N_("The part after the @-sign contains invalid characters: %(characters)s.")),
))


def _refusal(said: str) -> str | Text:
    """email-validator's reason as a Text when it is one of `_REFUSALS`, else as it says it."""
    for pattern, template in _REFUSALS:
        found = pattern.fullmatch(said)
        if found:
            return Text.of(template, **found.groupdict())
    return said


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


#: What a terminal would act on rather than show: C0 and C1 controls (ESC, CSI, BEL, CR, LF…),
#: DEL, the line and paragraph separators, the bidirectional overrides, embeddings and
#: isolates (they reorder what follows), lone surrogates (bytes a file held that were not text:
#: a terminal cannot even be sent them), and the backslash (so that an escape is unambiguous).
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\\]")


def has_control(value: str | None) -> bool:
    """Whether `value` holds a control character (the ones `clean_text` refuses)."""
    return bool(value) and _CONTROL.search(value) is not None  # type: ignore[arg-type]


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: What JSON text (`json.dumps(…, ensure_ascii=False)`) still holds of those: it escapes C0
#: controls and backslashes in its strings itself, and has only spaces and line feeds outside.
_UNSHOWABLE_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_json(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_controls(value: object, *, json: bool = False) -> str:
    """`value` as text a terminal shows as it is: every control, bidi override and backslash
    as a Python-style escape (`\\x1b`, `\\u202e`, `\\\\`); None is "".

    `json=True` is for JSON text (`json.dumps(…, ensure_ascii=False)`, which escapes C0 and
    backslashes itself): what is left becomes a JSON `\\uXXXX` escape, so it stays valid JSON
    that decodes to the same values.
    """
    if value is None:
        return ""
    if json:
        return _UNSHOWABLE_IN_JSON.sub(_escape_json, str(value))
    return _UNSHOWABLE.sub(_escape, str(value))


def clean_text(field: str, value: str | None, *, max_length: int = MAX_NAME) -> str:
    """`value` trimmed and NFC-normalised; raises InvalidField for control characters or length."""
    text = unicodedata.normalize("NFC", (value or "").strip())
    if _CONTROL.search(text):
        raise InvalidField(field, Text(N_("control characters (such as line breaks) are not allowed")))
    if len(text) > max_length:
        raise InvalidField(field, Text.of(N_("at most %(max)s characters, not %(length)s"), max=max_length,
                                          length=len(text)))
    return text
