"""CSV export: cells a spreadsheet would run as formulas are escaped, in the library and the CLI."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.people import lists, subscriptions
from newsletter.people.importer import ImportOptions, import_csv
from newsletter.people.records import spreadsheet_safe, write_csv

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("cell", FORMULAS)
def test_formula_like_cells_are_escaped(cell):
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Ana Ruiz", "ana@example.org", "", "Coalition = justice", "3-2", None, 42])
def test_ordinary_cells_are_unchanged(cell):
    assert spreadsheet_safe(cell) == ("" if cell is None else str(cell))


@given(st.text())
def test_no_cell_ever_starts_like_a_formula(text):
    assert not spreadsheet_safe(text).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_write_csv_escapes_every_cell_and_round_trips():
    out = io.StringIO()
    n = write_csv(out, ("email", "name"), [("a@example.org", "=1+2"), ("b@example.org", "@cmd"), ("-c@example.org", "+x")])
    assert n == 3
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["email", "name"], ["a@example.org", "'=1+2"], ["b@example.org", "'@cmd"], ["'-c@example.org", "'+x"]]


def test_names_imported_from_a_csv_come_out_escaped(newsletter, clock, tmp_path):
    """A formula smuggled in through an import (or a sign-up form) is inert in the export."""
    with newsletter.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())
    path = tmp_path / "in.csv"
    path.write_text('email,name\nx@example.org,"=HYPERLINK(""http://evil.example"")"\ny@example.org,@SUM(A1)\n'
                    "z@example.org,-1+1\nw@example.org,+33 1 23\n", encoding="utf-8")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("alerts",), confirmed=True, consent_note="t"))
    assert report.imported == 4
    out = io.StringIO()
    write_csv(out, ("email", "name", "language", "list", "status"), subscriptions.subscription_lines(newsletter))
    names = [row[1] for row in csv.reader(io.StringIO(out.getvalue()))][1:]
    assert sorted(names) == sorted(["'=HYPERLINK(\"http://evil.example\")", "'@SUM(A1)", "'-1+1", "'+33 1 23"])
