"""`newsletter demo` does the whole thing for real, can run again, and touches nothing else."""

from __future__ import annotations

import email
from email import policy

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.demo import PEOPLE, DemoError, run_demo


def test_demo_runs_end_to_end_and_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "newsletter.toml").write_text("# the user's own\n")
    folder = tmp_path / "newsletter-demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"signed up {len(PEOPLE)} people" in result.output
    assert f"{len(PEOPLE)} confirmed" in result.output
    assert "one-click POST): 200" in result.output
    for language in ("en", "fr", "es", "ar"):
        assert f"  {language}: " in result.output
    # the files it points at are there and are what it says
    emls = sorted((folder / "eml").glob("*.eml"))
    assert len(emls) == 2 * len(PEOPLE)  # a confirmation and the issue for each person
    issues = [m for m in (email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in emls)
              if m["List-Unsubscribe-Post"]]
    assert {str(m["Content-Language"]) for m in issues} == {"en", "fr", "es", "ar"}
    assert len({m["Message-ID"] for m in issues}) == len(PEOPLE)
    assert (folder / "preview" / "asp23-day-3.ar.html").exists()
    assert (tmp_path / "newsletter.toml").read_text() == "# the user's own\n"

    again = run_demo(folder)  # a second run starts afresh in the same folder
    assert again.confirmed == len(PEOPLE) and sum(again.sent_by_language.values()) == len(PEOPLE)


def test_demo_never_empties_a_folder_that_is_not_its_own(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DemoError, match="not a demo folder"):
        run_demo(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
