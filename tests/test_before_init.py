"""Any command before `newsletter init`: it creates nothing, and says that no newsletter.toml
was found (or, with one, that the database has no schema yet)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from newsletter.cli import main


@pytest.fixture
def empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.mark.parametrize("args", [["lists"], ["subscribers", "--count"], ["suppressions", "list"],
                                  ["campaigns"], ["show", "ana@example.org"], ["backup", "x.zip"]])
def test_a_command_before_init_creates_nothing_and_says_no_configuration_was_found(empty, args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "no configuration file was found" in result.output and "newsletter.toml does not exist" in result.output
    assert "Run `newsletter init` here" in result.output and "Traceback" not in result.output
    assert list(empty.iterdir()) == []  # no subscribers/ folder, no empty database file


def test_with_a_configuration_file_it_says_the_database_has_no_schema(empty):
    (empty / "newsletter.toml").write_text('database_url = "sqlite:///data/newsletter.db"\n')
    result = CliRunner().invoke(main, ["lists"])
    assert result.exit_code == 1 and "has no schema yet" in result.output and "newsletter init" in result.output
    assert "no configuration file was found" not in result.output
    assert not (empty / "data").exists()


def test_init_then_lists_works(empty):
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    assert (empty / "subscribers" / "newsletter.db").exists()
    result = CliRunner().invoke(main, ["lists"])
    assert result.exit_code == 0 and "no lists yet" in result.output
