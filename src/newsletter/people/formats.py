"""Other tools' exports, recognised by their header line, and the consent proof they carry. Pure.

- **Mailchimp** audience export (a zip of CSV files, one per status): each file starts with
  `Email Address, First Name, Last Name, …, MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME,
  CONFIRM_IP, …, LEID, EUID, NOTES, TAGS`. The "unsubscribed" file adds `UNSUB_TIME`,
  `UNSUB_CAMPAIGN_TITLE`, …, `UNSUB_REASON`; the "cleaned" one (addresses that bounced hard)
  adds `CLEAN_TIME`, `CLEAN_CAMPAIGN_TITLE`, …. Times are `YYYY-MM-DD HH:MM:SS` in UTC.
- **listmonk** subscriber export: `uuid, email, name, attributes, status, created_at,
  updated_at`, its status `enabled`, `disabled` or `blocklisted`.

`recognise(header)` names the format and what its file says of every row (an unsubscribed or a
cleaned export is a suppression list); `read_proof` turns a Mailchimp row's opt-in and
confirmation cells into a `ConsentProof`, kept in the consent log.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import NamedTuple

from ..errors import InvalidField
from ..texts import N_, Text

__all__ = ["SourceFormat", "ConsentProof", "recognise", "read_proof", "PROOF_FIELDS"]

#: The Mailchimp columns kept as consent proof, as `csvrows.ColumnMap` fields.
PROOF_FIELDS = {"optintime": "optin_time", "optinip": "optin_ip", "confirmtime": "confirm_time",
                "confirmip": "confirm_ip", "tags": "tags"}
_MAILCHIMP_MARKS = {"optintime", "confirmtime", "leid", "euid", "memberrating"}


class SourceFormat(NamedTuple):
    """What wrote a file: its name for people, and the status it gives every row whose own cell
    says nothing (a `csvrows.STATUS_VALUES` value; None: none)."""

    name: str
    status: str | None = None


class ConsentProof(NamedTuple):
    """When and from where a person opted in and confirmed, as the old system recorded it."""

    optin_at: datetime | None
    optin_ip: str | None
    confirm_at: datetime | None
    confirm_ip: str | None
    tags: str | None


def _key(cell: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFC", cell.strip().casefold()) if ch.isalnum())


def recognise(header: list[str]) -> SourceFormat:
    """The format of a file with this header line."""
    keys = {_key(cell) for cell in header}
    if keys & _MAILCHIMP_MARKS:
        if "unsubtime" in keys:
            return SourceFormat("Mailchimp export (unsubscribed)", "unsubscribed")
        if "cleantime" in keys:
            return SourceFormat("Mailchimp export (cleaned)", "hard_bounce")
        return SourceFormat("Mailchimp export (subscribed)")
    if {"uuid", "attributes", "status"} <= keys:
        return SourceFormat("listmonk export")
    return SourceFormat("CSV")


def _when(cell: str) -> datetime | None:
    """A Mailchimp time (UTC); raises ValueError for one that is not a time."""
    text = cell.strip()
    if not text:
        return None
    at = datetime.fromisoformat(text.replace(" ", "T", 1))
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _ip(cell: str) -> str | None:
    return cell.strip()[:64] or None


def read_proof(optin_time: str, optin_ip: str, confirm_time: str, confirm_ip: str, tags: str) -> ConsentProof | None:
    """The consent proof of one row's cells (None when they are all empty); raises InvalidField
    (a ValueError) naming the cell whose time cannot be read."""
    if not any(c.strip() for c in (optin_time, optin_ip, confirm_time, confirm_ip, tags)):
        return None
    times = []
    for name, cell in (("OPTIN_TIME", optin_time), ("CONFIRM_TIME", confirm_time)):
        try:
            times.append(_when(cell))
        except ValueError:
            raise InvalidField(name, Text.of(N_("%(value)s is not a time such as 2024-03-12 14:05:33"),
                                             value=repr(cell.strip()))) from None
    return ConsentProof(times[0], _ip(optin_ip), times[1], _ip(confirm_ip), tags.strip()[:500] or None)
