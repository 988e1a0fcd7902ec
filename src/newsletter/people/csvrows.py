"""Reading subscriber rows from a CSV file and checking each one: the pure half of an import.

`open_rows(path)` streams a file as `RawRow`s (line number + cells) after stripping a BOM,
detecting the delimiter (`,` `;` or tab, from the header line) and mapping the header's
columns to our fields (`email`, `name`, `language`, `lists`, with common aliases and
first/last name pairs). Memory does not depend on the file's size.

`check_rows(rows, rules)` turns raw rows into `CheckedRow`s or `RejectedRow`s (line number and
reason). It is a pure function of picklable values, so the importer can run it in worker
processes. Addresses go through `addresses.normalise_address`, whose fast path answers for
plain addresses exactly as email-validator would, in a twentieth of the time.

The encoding is UTF-8 unless the file says otherwise (`detect_encoding`): a file that is not
valid UTF-8 and holds no UTF-8 sequence at all is what Excel on Windows saves (cp1252, a
superset of Latin-1 in practice), and is read so; `--encoding` names one outright. Bytes the
encoding cannot read do not stop the file: they are read with `surrogateescape` and the row is
rejected, with its line number, as NOT_UTF8 (a file mixing UTF-8 with other bytes keeps UTF-8).

Other tools' exports (Mailchimp, listmonk) are recognised by their header (`formats`): their
consent proof (Mailchimp's OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, TAGS) is read into
each row, and a file that is a suppression list (Mailchimp's unsubscribed and cleaned exports)
gives every row its status.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..addresses import clean_text, normalise_address
from ..attributes import AttributeSpec, check_value
from ..errors import ImportFileError, InvalidAddress, InvalidField
from ..texts import N_, Text, text_of
from .formats import PROOF_FIELDS, ConsentProof, SourceFormat, read_proof, recognise
from .records import spreadsheet_unescape
from .textfiles import CountingReader, detect_encoding

__all__ = [
    "RejectReason",
    "RejectedRow",
    "RawRow",
    "CheckedRow",
    "ColumnMap",
    "RowRules",
    "CsvRows",
    "open_rows",
    "map_columns",
    "detect_delimiter",
    "split_list_slugs",
    "check_row",
    "check_rows",
    "check_each",
    "DELIMITERS",
    "STATUS_VALUES",
    "PENDING",
    "detect_encoding",
    "status_value",
]

#: The delimiters we detect, by name (the CLI's --delimiter takes these names too).
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\t": "\t"}

# Header spellings, compared after case-folding and dropping everything but letters and digits.
_ALIASES = {
    "email": {"email", "emailaddress", "mail", "courriel", "adresseemail", "adressecourriel",
              "correo", "correoelectronico", "correoelectrónico"},
    "name": {"name", "fullname", "displayname", "nom", "nomcomplet", "nombre", "nombrecompleto"},
    "first_name": {"firstname", "givenname", "forename", "prenom", "prénom"},
    "last_name": {"lastname", "surname", "familyname", "nomdefamille", "apellido", "apellidos"},
    "language": {"language", "lang", "locale", "langue", "idioma"},
    "lists": {"lists", "list", "listslugs", "slug", "slugs", "listes", "liste", "listas", "lista"},
    "status": {"status", "subscriptionstatus", "memberstatus", "state", "statut", "estado"},
}

#: What a `status` cell says, case-folded. A SuppressionReason value: the address is suppressed,
#: never imported as a person (whatever the import's options). PENDING: imported pending, with
#: the double opt-in, even into a confirmed import (it never confirmed). None: as the options say.
PENDING = "pending"
STATUS_VALUES: dict[str, str | None] = {
    **dict.fromkeys(("", "active", "subscribed", "confirmed", "enabled", "actif", "activo"), None),
    **dict.fromkeys(("pending", "unconfirmed", "unconfirmed_opt_in", "double_opt_in"), PENDING),
    **dict.fromkeys(("unsubscribed", "unsubscribe", "opted_out", "optedout", "opt_out", "left", "désabonné",
                     "desabonne", "dado_de_baja"), "unsubscribed"),
    **dict.fromkeys(("bounced", "hard_bounce", "hardbounce", "bounce", "cleaned"), "hard_bounce"),
    **dict.fromkeys(("complained", "complaint", "spam", "abuse"), "complaint"),
    **dict.fromkeys(("blocked", "blocklisted", "blacklisted", "blocklist"), "blocked"),
    **dict.fromkeys(("suppressed", "disabled"), "admin"),
    **dict.fromkeys(("erased",), "erased"),
}
_LIST_SEPARATORS = re.compile(r"[|;,\s]+")
_NOT_UTF8 = re.compile(r"[\udc80-\udcff]")


class RejectReason(str, enum.Enum):
    """Why a row was not imported."""

    MISSING_ADDRESS = "missing address"
    INVALID_ADDRESS = "invalid address"
    INVALID_NAME = "invalid name"
    UNKNOWN_LANGUAGE = "unknown language"
    UNKNOWN_LIST = "unknown list"
    NO_LIST = "no list"
    UNKNOWN_STATUS = "unknown status"
    INVALID_PROOF = "invalid consent proof"
    INVALID_ATTRIBUTE = "invalid attribute"
    NOT_UTF8 = "not UTF-8"
    MALFORMED = "malformed row"


class RejectedRow(NamedTuple):
    """A row that was not imported: its first line in the file, the address as written, and why
    (`reason`, and `said`: what is wrong with it, a Text the workspace shows translated)."""

    line: int
    email: str
    reason: RejectReason
    said: Text
    #: The row's cells as read, for the reject file.
    cells: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        """What is wrong with the row, in English (the CLI's report, the reject file)."""
        return str(self.said)


class RawRow(NamedTuple):
    """A record as read: the line it starts on (the header is line 1) and its cells."""

    line: int
    cells: list[str]


class CheckedRow(NamedTuple):
    """A row that passed every check, its values in the form we store."""

    line: int
    email: str
    name: str
    #: None: the file did not say (the importer's default applies to new people).
    language: str | None
    list_slugs: tuple[str, ...]
    #: What the row's `status` cell says (STATUS_VALUES): a SuppressionReason value (the row is a
    #: suppression: no language or list is checked), PENDING, or None.
    status: str | None = None
    #: The declared attributes the row gives, ((name, value), …); empty cells are left out.
    attributes: tuple[tuple[str, Any], ...] = ()
    #: When and from where the person opted in and confirmed, as another tool recorded it.
    proof: ConsentProof | None = None


@dataclass(frozen=True)
class ColumnMap:
    """Which column (0-based) holds each field; None when the file has no such column."""

    email: int
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    language: int | None = None
    lists: int | None = None
    status: int | None = None
    #: Consent proof written by another tool (Mailchimp's OPTIN_TIME, OPTIN_IP, …).
    optin_time: int | None = None
    optin_ip: int | None = None
    confirm_time: int | None = None
    confirm_ip: int | None = None
    tags: int | None = None
    #: Header cells we do not use.
    ignored: tuple[str, ...] = ()
    #: Columns holding declared attributes: ((attribute name, column), …).
    attributes: tuple[tuple[str, int], ...] = ()
    #: What wrote the file (recognised by its header).
    source: SourceFormat = SourceFormat("CSV")

    @property
    def has_proof(self) -> bool:
        return any(i is not None for i in (self.optin_time, self.optin_ip, self.confirm_time, self.confirm_ip))


@dataclass(frozen=True)
class RowRules:
    """What a row must satisfy; picklable, so worker processes can apply them."""

    columns: ColumnMap
    languages: tuple[str, ...]
    known_lists: frozenset[str]
    #: Lists every row is added to (the CLI's --list), besides its own `lists` cell.
    extra_lists: tuple[str, ...] = ()
    #: The language for rows that do not name one (None: the importer decides).
    default_language: str | None = None
    check_deliverability: bool = False
    #: The status of rows whose own status cell says nothing (a STATUS_VALUES value: the
    #: import's --status, or what the file's format says of every row).
    default_status: str | None = None
    #: The file's encoding, for the reason of a row it cannot read.
    encoding: str = "utf-8"
    #: The declared attributes (those `columns.attributes` names are checked with them).
    attributes: tuple[AttributeSpec, ...] = ()


def _header_key(cell: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFC", cell.strip().casefold()) if ch.isalnum())


def map_columns(header: list[str], path: str = "", attributes: Iterable[AttributeSpec] = ()) -> ColumnMap:
    """Map header cells to fields and declared attributes (by name, or one of the spec's
    `columns`; first match wins). Raises ImportFileError without an email column."""
    found: dict[str, int] = {}
    named = {_header_key(spelling): spec.name for spec in attributes for spelling in (spec.name, *spec.columns)}
    attribute_columns: dict[str, int] = {}
    ignored = []
    for index, cell in enumerate(header):
        key = _header_key(cell)
        field = PROOF_FIELDS.get(key) or next((f for f, names in _ALIASES.items() if key in names), None)
        if field is None and key in named and named[key] not in attribute_columns:
            attribute_columns[named[key]] = index
            continue
        if field is None or field in found:
            ignored.append(cell)
            continue
        found[field] = index
    if "email" not in found:
        looks_like_data = any("@" in cell for cell in header)
        if looks_like_data:
            said = Text(N_("the first line has no email column (it looks like data: add a header line); start the "
                           "file with a header such as email,name,language,lists"))
        else:
            said = Text.of(N_("the first line has no email column (it reads %(header)s); start the file with a "
                              "header such as email,name,language,lists"), header=repr(header))
        raise ImportFileError(path, said)
    if "first_name" in found and "name" in found and "last_name" not in found:
        found["last_name"] = found.pop("name")  # "Prénom;Nom", "Nombre;…": beside a first name, nom is the surname
    return ColumnMap(ignored=tuple(ignored), source=recognise(header),
                     attributes=tuple(attribute_columns.items()), **found)


def detect_delimiter(header_line: str) -> str:
    """The delimiter of a header line: whichever of , ; and tab occurs most outside quotes (default ,)."""
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def split_list_slugs(cell: str) -> list[str]:
    """List slugs in one cell, separated by |, ;, commas or spaces."""
    return [s for s in _LIST_SEPARATORS.split(cell.strip().lower()) if s]


class CsvRows:
    """An open CSV file: its delimiter, column map and a stream of `RawRow`s. Close when done."""

    def __init__(self, path: str, delimiter: str | None = None, attributes: Iterable[AttributeSpec] = (),
                 encoding: str | None = None):
        self.path = path
        if encoding is not None:
            try:
                self.encoding = codecs.lookup(encoding).name
            except LookupError:
                raise ImportFileError(path, Text.of(N_("there is no encoding %(encoding)s (try utf-8, cp1252 or "
                                                       "latin-1)"), encoding=repr(encoding))) from None
            self.encoding_detected = False
        try:
            self.total_bytes = os.path.getsize(path)
            if encoding is None:
                self.encoding, self.encoding_detected = detect_encoding(path), True
            raw = open(path, "rb")  # noqa: SIM115  (closed by close())
        except OSError as exc:
            raise ImportFileError(path, Text.of(N_("cannot read the file: %(error)s"),
                                                error=exc.strerror or str(exc))) from None
        self._counter = CountingReader(raw)
        codec = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        self._text = io.TextIOWrapper(io.BufferedReader(self._counter, 1 << 16), encoding=codec,
                                      errors="surrogateescape", newline="")
        first = self._text.readline()
        if not first.strip():
            self.close()
            raise ImportFileError(path, Text(N_("the file is empty; start it with a header such as "
                                                "email,name,language,lists")))
        if delimiter is not None and delimiter not in DELIMITERS:
            self.close()
            raise ImportFileError(path, Text.of(N_("the delimiter must be one of , ; tab, not %(delimiter)s"),
                                                delimiter=repr(delimiter)))
        self.delimiter = DELIMITERS[delimiter] if delimiter else detect_delimiter(first)
        self._reader = csv.reader(_chain(first, self._text), delimiter=self.delimiter)
        try:
            self.header = next(self._reader)
        except csv.Error as exc:
            self.close()
            raise ImportFileError(path, Text.of(N_("the header line cannot be read: %(error)s"), error=str(exc))) \
                from None
        try:
            self.columns = map_columns(self.header, path, attributes)
        except ImportFileError:
            self.close()
            raise

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    def __iter__(self) -> Iterator[RawRow | RejectedRow]:
        """Every record after the header; blank lines are skipped, unreadable ones are RejectedRows."""
        reader = self._reader
        last = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RejectedRow(last + 1, "", RejectReason.MALFORMED, text_of(str(exc)))  # the csv module's words
                last = reader.line_num
                continue
            line, last = last + 1, reader.line_num
            if "".join(cells).strip():
                yield RawRow(line, cells)

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> "CsvRows":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def open_rows(path: str | os.PathLike, delimiter: str | None = None,
              attributes: Iterable[AttributeSpec] = (), encoding: str | None = None) -> CsvRows:
    """Open a CSV file of people (columns named like a declared attribute hold its values), in
    `encoding` (None: `detect_encoding`'s answer). Raises ImportFileError (unreadable, empty, no
    email column, an unknown encoding)."""
    return CsvRows(os.fspath(path), delimiter, attributes, encoding)


def _cell(cells: list[str], index: int | None) -> str:
    """A cell's text, the spreadsheet escape of our own exports undone (`records.spreadsheet_unescape`)."""
    return spreadsheet_unescape(cells[index]) if index is not None and index < len(cells) else ""


def check_row(row: RawRow, rules: RowRules) -> CheckedRow | RejectedRow:
    """One row checked against `rules`: a CheckedRow, or a RejectedRow saying why not."""
    return _RowChecker(rules).check(row)


def check_rows(rows: list[RawRow | RejectedRow], rules: RowRules) -> list[CheckedRow | RejectedRow]:
    """`check_row` for each row, in order (the unit of work a worker process is given).

    RejectedRows (records the CSV reader could not parse) pass through unchanged.
    """
    return list(check_each(rows, rules))


def check_each(rows: Iterable[RawRow | RejectedRow], rules: RowRules) -> Iterator[CheckedRow | RejectedRow]:
    """`check_row` for each row as it comes (a generator: nothing is held but the current row)."""
    check = _RowChecker(rules).check
    for row in rows:
        yield row if type(row) is RejectedRow else check(row)


class _Reject(NamedTuple):
    reason: RejectReason
    said: Text


class _RowChecker:
    """`check_row` for many rows under one set of rules.

    A file repeats a handful of language and list cells ("fr", "asp-daily|alerts") over and
    over, so their answers are kept, up to MEMO_SIZE cells of each kind (then forgotten, so
    that memory stays flat whatever the file holds).
    """

    MEMO_SIZE = 1024

    def __init__(self, rules: RowRules):
        self.rules = rules
        self._languages: dict[str, str | None | _Reject] = {}
        self._lists: dict[str, tuple[str, ...] | _Reject] = {}
        self._statuses: dict[str, str | None | _Reject] = {}
        self._specs = {spec.name: spec for spec in rules.attributes}

    def check(self, row: RawRow) -> CheckedRow | RejectedRow:
        cols, cells = self.rules.columns, row.cells
        raw_email = _cell(cells, cols.email)

        def reject(reason: RejectReason, said: Text) -> RejectedRow:
            return RejectedRow(row.line, raw_email.strip(), reason, said, tuple(cells))

        if _NOT_UTF8.search("".join(cells)):  # one search of the row, not one per cell
            return reject(RejectReason.NOT_UTF8, Text.of(N_("the row holds bytes that are not %(encoding)s; save the "
                                                            "file as UTF-8, or name its encoding"),
                                                         encoding=self.rules.encoding))
        if not raw_email.strip():
            return reject(RejectReason.MISSING_ADDRESS, Text(N_("the email cell is empty")))
        try:
            email = normalise_address(raw_email, check_deliverability=self.rules.check_deliverability)
        except InvalidAddress as exc:
            return reject(RejectReason.INVALID_ADDRESS, exc.reason_said)
        status = None
        if cols.status is not None:
            status = self._memoised(self._statuses, _cell(cells, cols.status), _status)
            if type(status) is _Reject:
                return reject(*status)
        status = status or self.rules.default_status
        if status is not None and status != PENDING:  # a suppression: nothing else of the row matters
            return CheckedRow(row.line, email, "", None, (), status)
        proof = None
        if cols.has_proof or cols.tags is not None:
            try:
                proof = read_proof(*(_cell(cells, i) for i in (cols.optin_time, cols.optin_ip, cols.confirm_time,
                                                              cols.confirm_ip, cols.tags)))
            except InvalidField as exc:
                return reject(RejectReason.INVALID_PROOF, Text.of("%(field)s %(reason)s", field=exc.field,
                                                                  reason=exc.reason_said))
        if cols.name is not None:
            name = _cell(cells, cols.name)
        else:
            name = " ".join(p.strip() for p in (_cell(cells, cols.first_name), _cell(cells, cols.last_name))
                            if p.strip())
        try:
            name = clean_text("name", name)
        except InvalidField as exc:
            return reject(RejectReason.INVALID_NAME, exc.reason_said)
        language = self._memoised(self._languages, _cell(cells, cols.language), self._language)
        if type(language) is _Reject:
            return reject(*language)
        slugs = self._memoised(self._lists, _cell(cells, cols.lists), self._slugs)
        if type(slugs) is _Reject:
            return reject(*slugs)
        if not cols.attributes:
            return CheckedRow(row.line, email, name, language, slugs, status, proof=proof)
        attributes = []
        for attribute, index in cols.attributes:
            cell = _cell(cells, index)
            if cell.strip():
                try:
                    attributes.append((attribute, check_value(self._specs[attribute], cell)))
                except InvalidField as exc:
                    return reject(RejectReason.INVALID_ATTRIBUTE, exc.said)
        return CheckedRow(row.line, email, name, language, slugs, status, tuple(attributes), proof)

    def _memoised(self, memo: dict, cell: str, judge: Callable[[str], Any]) -> Any:
        """`judge(cell)`, remembered: a file repeats the same few language and list cells."""
        value = memo.get(cell, _MISSING)
        if value is _MISSING:
            if len(memo) >= self.MEMO_SIZE:
                memo.clear()
            value = memo[cell] = judge(cell)
        return value

    def _language(self, cell: str) -> str | None | _Reject:
        """The language a cell names (None: the importer's default), or why it is refused."""
        language = cell.strip().lower().replace("_", "-").split("-")[0] or self.rules.default_language
        if language is not None and language not in self.rules.languages:
            return _Reject(RejectReason.UNKNOWN_LANGUAGE, Text.of(N_("%(value)s is not one of %(languages)s"),
                                                                  value=repr(cell.strip()),
                                                                  languages=", ".join(self.rules.languages)))
        return language

    def _slugs(self, cell: str) -> tuple[str, ...] | _Reject:
        """The lists a row joins (its cell's and the extra ones), or why it is refused."""
        slugs = split_list_slugs(cell)
        unknown = [s for s in slugs if s not in self.rules.known_lists]
        if unknown:
            return _Reject(RejectReason.UNKNOWN_LIST, Text.of(N_("there is no list %(slug)s"),
                                                              slug=", ".join(map(repr, unknown))))
        slugs = list(dict.fromkeys([*slugs, *self.rules.extra_lists]))
        if not slugs:
            return _Reject(RejectReason.NO_LIST, Text(N_("the row names no list and no --list was given")))
        return tuple(slugs)


def status_value(cell: str) -> str | None:
    """What a status (a cell, or the import's --status) says: a STATUS_VALUES value. Raises
    InvalidField for one we do not know."""
    said = _status(cell)
    if type(said) is _Reject:
        raise InvalidField("status", said.said)
    return said


def _status(cell: str) -> str | None | _Reject:
    """What a status cell says (see STATUS_VALUES), or why it is refused."""
    key = unicodedata.normalize("NFC", cell.strip().casefold()).replace("-", "_").replace(" ", "_")
    if key in STATUS_VALUES:
        return STATUS_VALUES[key]
    known = sorted({k for k in STATUS_VALUES if k} & {"active", "pending", "unsubscribed", "bounced", "cleaned",
                                                     "complained", "blocklisted"})
    return _Reject(RejectReason.UNKNOWN_STATUS, Text.of(N_("%(value)s is not a status we know (%(known)s, …)"),
                                                        value=repr(cell.strip()), known=", ".join(known)))


_MISSING = object()
