"""Moving an installation: `backup` writes everything the store holds to one archive, `restore`
reads it into another store (SQLite or PostgreSQL, either way), losing nothing.

The archive (format "newsletter-backup", version 1) is a zip file::

    manifest.json         {"format": "newsletter-backup", "version": 1, "schema_revision": …,
                           "created_at": …, "database": "sqlite" | "postgresql",
                           "tables": [{"name", "file", "columns", "rows", "sha256"}, …]}
    tables/<name>.jsonl   one JSON array per row, the values in the order of "columns"

Every table goes, with every column and its ids: people with their statuses, subscriptions,
the whole consent log, the suppression list (hashes only) and its lifts, bounces and scores,
lists, campaigns with their ledger rows, the confirmation queue, and the staff workspace's
accounts (password hashes), sessions, audit trail and issues. Times are ISO 8601 in UTC.

A restore checks before it writes: the format and its version, every table and column known
to this schema (a column the archive lacks takes its default), the store empty unless
`replace` is given. It writes everything in one transaction, checking each file's row count
and SHA-256 as it goes; any mismatch rolls all of it back. The signing key (`secret.key`) is
not in the archive: move it alongside, or the links already mailed stop working.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ArchiveError, StoreNotEmpty
from ..installation import Newsletter
from ..store import archive

__all__ = ["FORMAT", "VERSION", "BackupReport", "RestoreReport", "backup", "restore", "read_manifest"]

FORMAT = "newsletter-backup"
#: The archive format's version; a restore refuses any other.
VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BackupReport:
    """What `backup` wrote: the archive, the schema revision it was taken at, rows per table."""

    path: str
    schema_revision: str
    rows: dict[str, int]
    size: int


@dataclass(frozen=True)
class RestoreReport:
    """What `restore` wrote: rows per table, from an archive taken at `created_at` from a
    `database` at `schema_revision`; `replaced` rows per table deleted first (replace only)."""

    path: str
    schema_revision: str
    created_at: datetime
    database: str
    rows: dict[str, int]
    replaced: dict[str, int]


def _line(values: list[Any]) -> bytes:
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def backup(newsletter: Newsletter, path: str | os.PathLike) -> BackupReport:
    """Write everything the store holds to a new archive at `path` (replaced if it exists).

    The rows are read in one transaction, so the archive is one moment's state (on SQLite,
    writers wait meanwhile). The archive appears at `path` only once complete. Raises
    ArchiveError when it cannot be written.
    """
    path = os.fspath(path)
    partial = f"{path}.partial"
    store = newsletter.store
    store.check_schema()
    tables, rows = [], {}
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf, store.session() as session:
            if store.dialect == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            for name in archive.TABLES:
                columns = archive.table_columns(name)
                digest, count, file = hashlib.sha256(), 0, f"tables/{name}.jsonl"
                with zf.open(file, "w", force_zip64=True) as out:
                    for row in archive.dump_rows(session, name):
                        line = _line([row[c] for c in columns])
                        digest.update(line)
                        out.write(line)
                        count += 1
                tables.append({"name": name, "file": file, "columns": list(columns), "rows": count,
                               "sha256": digest.hexdigest()})
                rows[name] = count
            manifest = {"format": FORMAT, "version": VERSION, "schema_revision": store.head_revision(),
                        "created_at": newsletter.clock().isoformat(), "database": store.dialect, "tables": tables}
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        os.replace(partial, path)
    except OSError as exc:
        Path(partial).unlink(missing_ok=True)
        raise ArchiveError(path, f"cannot write the archive: {exc.strerror or exc}") from None
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return BackupReport(path, store.head_revision(), rows, os.path.getsize(path))


def _open(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(path, "there is no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(path, f"this is not a backup archive ({exc})") from None


def _manifest(path: str, zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise ArchiveError(path, f"this is not a backup archive (it has no {MANIFEST})") from None
    except (ValueError, zipfile.BadZipFile) as exc:
        raise ArchiveError(path, f"its {MANIFEST} cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(path, f"this is not a {FORMAT} archive")
    if manifest.get("version") != VERSION:
        raise ArchiveError(path, f"the archive is in version {manifest.get('version')!r} of the format; this "
                                 f"version of the software reads version {VERSION} (upgrade it first)")
    for table in manifest.get("tables", []):
        if table.get("name") not in archive.TABLES:
            raise ArchiveError(path, f"the archive holds a table {table.get('name')!r} this schema does not have "
                                     "(it was made by a newer version: upgrade this installation first)")
        unknown, unfillable = archive.restorable_columns(table["name"], table["columns"])
        if unknown:
            raise ArchiveError(path, f"table {table['name']}: columns {', '.join(unknown)} are not in this schema "
                                     "(it was made by a newer version: upgrade this installation first)")
        if unfillable:
            raise ArchiveError(path, f"table {table['name']}: the archive lacks columns {', '.join(unfillable)}, "
                                     "which have no default")
    return manifest


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The archive's manifest, checked (format, version, tables and columns). Raises ArchiveError."""
    path = os.fspath(path)
    with _open(path) as zf:
        return _manifest(path, zf)


def _rows(path: str, zf: zipfile.ZipFile, table: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rows of one table's file, checked against the manifest's count and digest at its end."""
    columns = table["columns"]
    digest, count = hashlib.sha256(), 0
    try:
        lines: BinaryIO = zf.open(table["file"])
    except KeyError:
        raise ArchiveError(path, f"the archive lacks {table['file']}") from None
    with lines:
        for number, line in enumerate(lines, 1):
            digest.update(line)
            try:
                values = json.loads(line)
            except ValueError:
                raise ArchiveError(path, f"{table['file']} line {number} is not JSON") from None
            if not isinstance(values, list) or len(values) != len(columns):
                raise ArchiveError(path, f"{table['file']} line {number} does not have {len(columns)} values")
            count += 1
            yield dict(zip(columns, values))
    if count != table["rows"] or digest.hexdigest() != table["sha256"]:
        raise ArchiveError(path, f"{table['file']} is damaged: {count} rows where the manifest says "
                                 f"{table['rows']}, or its checksum differs")


def restore(newsletter: Newsletter, path: str | os.PathLike, *, replace: bool = False) -> RestoreReport:
    """Restore an archive made by `backup` into this installation's store, in one transaction.

    The store must be empty (its schema at this code's revision, as after a first `init`);
    with `replace`, whatever it holds is deleted first, in the same transaction (never a staff
    audit trail: a store that holds one is refused). Raises
    ArchiveError (unreadable, another format or version, damaged, unknown tables or columns)
    and StoreNotEmpty; nothing is written then.
    """
    path = os.fspath(path)
    store = newsletter.store
    store.check_schema()
    with _open(path) as zf:
        manifest = _manifest(path, zf)
        try:
            created_at = datetime.fromisoformat(manifest["created_at"])
        except (KeyError, TypeError, ValueError):
            raise ArchiveError(path, "its manifest has no valid created_at") from None
        by_name = {t["name"]: t for t in manifest["tables"]}
        rows: dict[str, int] = {}
        with store.session() as session:
            held = archive.nonempty_tables(session)
            if held and not replace:
                raise StoreNotEmpty(held)
            kept = tuple(name for name in archive.APPEND_ONLY if name in held)
            if kept:
                raise StoreNotEmpty(held, kept)
            if held:
                archive.delete_everything(session)
            for name in archive.TABLES:
                if name in by_name:
                    rows[name] = archive.load_rows(session, name, _rows(path, zf, by_name[name]))
            archive.reset_sequences(session)
    return RestoreReport(path, str(manifest.get("schema_revision")), created_at, str(manifest.get("database")),
                         rows, held)
