"""A CSV import uploaded in the workspace: checked (dry run) or done, reported row by row, audited.

The upload is copied to a private temporary folder under its own (cleaned) file name and
imported by the one importer (`people.importer`), whose rules are the command line's; the
consent log names the file and the staff member ("import:members.csv by staff:<address>").
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import ImportFileError
from ..installation import Newsletter
from ..people.importer import ImportOptions, ImportReport, import_csv
from . import audit
from .audit import Actor
from .roles import Action

__all__ = ["import_upload", "clean_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clean_file_name(name: str | None) -> str:
    """A file name safe to write and to show: letters, digits, dot, dash, underscore; .csv kept."""
    base = _UNSAFE.sub("-", Path(name or "").name).strip(".-")[:80]
    return base or "upload.csv"


def import_upload(newsletter: Newsletter, actor: Actor, file_name: str | None, data: BinaryIO, *,
                  list_slugs: tuple[str, ...] = (), language: str | None = None, dry_run: bool = True,
                  confirmed: bool = False, consent_note: str | None = None) -> ImportReport:
    """Import (or, `dry_run`, check) an uploaded CSV file; returns the importer's report.

    Raises as `people.importer.import_csv` (ImportFileError, UnknownList, InvalidField,
    DeliveryError); rows are reported, never raised."""
    name = clean_file_name(file_name)
    with tempfile.TemporaryDirectory(prefix="newsletter-import-") as folder:
        path = Path(folder) / name
        with path.open("wb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
        options = ImportOptions(list_slugs=tuple(list_slugs), language=language or None, confirmed=confirmed,
                                consent_note=consent_note or None, dry_run=dry_run,
                                source=f"import:{name} by {actor.consent_source}")
        try:
            report = import_csv(newsletter, path, options)
        except ImportFileError as exc:  # named as it was uploaded, not by the temporary folder
            raise ImportFileError(name, exc.reason_said) from None
    detail = (f"{'dry run: ' if dry_run else ''}rows={report.rows} imported={report.imported} "
              f"rejected={report.rejected} suppressed={report.suppressed} lists={','.join(list_slugs) or '-'}"
              + (" confirmed" if confirmed else ""))
    audit.note(newsletter, actor, Action.IMPORT_PEOPLE, name, detail)
    return report
