"""`newsletter issue import / export / show`: both ways of working stay open."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import REPO

from newsletter.cli import main
from newsletter.mail.content import load_issue

DAY_4 = [str(p) for p in sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))]


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_issue_import_show_and_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    run("init")
    missing = run("issue", "show", "asp23-day-4")  # not there yet: said, without a traceback
    assert missing.exit_code == 1
    assert "no issue 'asp23-day-4'" in missing.output and "newsletter issue import" in missing.output
    assert "Traceback" not in missing.output
    no_list = run("issue", "import", *DAY_4)
    assert no_list.exit_code == 1 and "no list 'asp-daily'" in no_list.output
    run("lists", "create", "asp-daily", "ASP daily summaries", "--languages", "en,fr,es,ar")
    imported = run("issue", "import", *DAY_4, "--by", "editor@example.org")
    assert imported.exit_code == 0, imported.output
    assert "fr: current, revision 1, from en revision 1 by editor@example.org" in imported.output
    assert "es: missing" in imported.output
    out = tmp_path / "out"
    exported = run("issue", "export", "asp23-day-4", "--out", str(out))
    assert exported.exit_code == 0 and exported.output.count(".md") == 3
    assert load_issue(sorted(out.glob("*.md"))).languages == ("en", "fr", "ar")
    # Edit the English file and take it in again: French and Arabic are now stale.
    english = out / "asp23-day-4.en.md"
    english.write_text(english.read_text().replace("Cooperation was the theme", "Cooperation was the subject"))
    again = run("issue", "import", str(english))
    assert "en: source, revision 2" in again.output and "fr: stale, revision 1" in again.output
    assert "the en version changed since: lead" in again.output
    broken = run("issue", "import", str(tmp_path / "nowhere.en.md"))
    assert broken.exit_code == 1 and "no such file" in broken.output
