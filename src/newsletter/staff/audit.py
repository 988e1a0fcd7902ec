"""The staff audit trail: who did what, when, from where. Append-only.

`record(session, actor, action, target, detail, ip)` appends a line in the caller's
transaction, so an action and its line are written together or not at all. There is no
function to change or remove a line, and the database refuses UPDATE and DELETE of the table
(a trigger). `lines` and `export_csv` read it for the workspace's audit page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from sqlalchemy.orm import Session

from ..installation import Newsletter
from ..people.records import spreadsheet_safe
from ..store import staff as staff_store

__all__ = ["Actor", "AuditLine", "AuditPage", "record", "note", "lines", "export_csv", "CLI_ACTOR", "CSV_HEADER"]

#: How the command line is named in the trail (it has no account).
CLI_ACTOR = "cli"
CSV_HEADER = ("at", "actor", "action", "target", "detail", "ip")


class _Named(Protocol):
    id: int
    email: str


@dataclass
class Actor:
    """Who acts, and from where: a staff member (None: the command line) and their IP.

    `recorded` becomes True once a line was written for this request's action (the workspace's
    guard writes a generic line for an action whose use case wrote none).
    """

    member: _Named | None
    ip: str | None = None
    recorded: bool = False

    @property
    def name(self) -> str:
        return self.member.email if self.member is not None else CLI_ACTOR

    @property
    def consent_source(self) -> str:
        """How the consent log names this actor: "staff:<address>", or "cli"."""
        return f"staff:{self.member.email}" if self.member is not None else CLI_ACTOR


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    target: str
    detail: str
    ip: str | None


@dataclass(frozen=True)
class AuditPage:
    lines: tuple[AuditLine, ...]
    total: int
    offset: int
    limit: int


def record(session: Session, actor: Actor | _Named | None, action: Enum | str, target: str = "",
           detail: str = "", ip: str | None = None, *, now: datetime) -> None:
    """Append one line: `actor` (an Actor, a member, or None for the command line) took `action`
    on `target`. `ip` defaults to the Actor's."""
    if isinstance(actor, Actor):
        ip = ip if ip is not None else actor.ip
        member = actor.member
        actor.recorded = True
    else:
        member = actor
    staff_store.add_audit(session, at=now, actor_id=member.id if member is not None else None,
                          actor=member.email if member is not None else CLI_ACTOR,
                          action=action.value if isinstance(action, Enum) else str(action),
                          target=target[:400], detail=detail, ip=ip)


def note(newsletter: Newsletter, actor: Actor | None, action: Enum | str, target: str = "", detail: str = "") -> None:
    """Append one line in a transaction of its own (for what no use case records: a refusal,
    an action whose use case wrote none)."""
    with newsletter.store.session() as session:
        record(session, actor, action, target, detail, now=newsletter.clock())


def _line(row) -> AuditLine:
    return AuditLine(row.at, row.actor, row.action, row.target, row.detail, row.ip)


def lines(newsletter: Newsletter, *, actor: str | None = None, action: str | None = None,
          since: datetime | None = None, until: datetime | None = None, offset: int = 0,
          limit: int = 100) -> AuditPage:
    """One page of the trail, newest first, filtered by actor, action and time."""
    limit = max(1, min(limit, 500))
    offset = max(0, offset)
    with newsletter.store.reading() as session:
        rows = staff_store.audit_lines(session, actor=actor or None, action=action or None, since=since,
                                       until=until, limit=limit, offset=offset)
        total = staff_store.count_audit_lines(session, actor=actor or None, action=action or None, since=since,
                                              until=until)
        return AuditPage(tuple(_line(r) for r in rows), total, offset, limit)


def export_csv(newsletter: Newsletter, *, actor: str | None = None, action: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> Iterator[str]:
    """The matching lines as CSV (header first, oldest first), in chunks of text; every cell
    made safe for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    with newsletter.store.reading() as session:
        for n, row in enumerate(staff_store.iter_audit_lines(session, actor=actor or None, action=action or None,
                                                             since=since, until=until)):
            writer.writerow([row.at.isoformat(), *(spreadsheet_safe(v or "") for v in
                                                   (row.actor, row.action, row.target, row.detail, row.ip))])
            if n % 500 == 499:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    yield out.getvalue()
