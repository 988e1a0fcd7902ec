"""`newsletter preview`: files per language, a complete .eml, the lint report, the store's languages."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.people import lists as lists_lib
from newsletter.statuses import SubscriptionStatus
from newsletter.store import Store, Subscriber, Subscription

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "NEWSLETTER_CONFIG": "",
        "NEWSLETTER_BASE_URL": "https://news.example.org",
        "NEWSLETTER_TEMPLATES_DIR": str(REPO / "templates"),
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}",
        "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }


def run(args: list[str], env: dict[str, str], cwd: Path):
    """Run the command line with absolute paths only (`cwd` is where relative ones would go)."""
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_preview_writes_every_language_with_no_lint_error(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "out"
    result = run(["preview", str(EXAMPLES / "asp23"), str(EXAMPLES / "alerts"), "--out", str(out)], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "lint: no problems" in result.output
    assert "error" not in result.output
    assert str(out.resolve()) in result.output
    for stem, languages in (("asp23-day-3", ("en", "fr", "es", "ar")), ("asp23-day-4", ("en", "fr", "ar")),
                            ("asp23-day-5", ("en", "fr", "es", "ar")), ("asp23-defend-the-court", ("en", "fr", "es", "ar"))):
        for language in languages:
            for ext in ("html", "txt", "eml"):
                assert (out / f"{stem}.{language}.{ext}").stat().st_size > 500, (stem, language, ext)


def test_eml_is_a_complete_message_as_a_reader_gets_it(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "out"
    result = run(["preview", str(EXAMPLES / "alerts"), "--lang", "ar", "--out", str(out)], env, tmp_path)
    assert result.exit_code == 0, result.output
    msg = email.message_from_bytes((out / "asp23-defend-the-court.ar.eml").read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "reader@example.org"
    assert "الدفاع عن المحكمة" in msg["Subject"]
    assert msg["Content-Language"] == "ar"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://news.example.org/unsubscribe/" in msg["List-Unsubscribe"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "[[nl:" not in text and "[[nl:" not in html
    doc = BeautifulSoup(html, "html.parser")
    assert doc.html["dir"] == "rtl" and doc.html["lang"] == "ar"
    assert "https://news.example.org/unsubscribe/SAMPLE-TOKEN" in [a["href"] for a in doc.find_all("a")]
    assert (out / "asp23-defend-the-court.ar.html").read_text(encoding="utf-8") == html.replace("\r\n", "\n")
    assert not (out / "asp23-defend-the-court.en.html").exists()


def test_language_without_variant_shows_the_fallback(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "out"
    result = run(["preview", str(EXAMPLES / "asp23" / "day-4.*.md"), "--lang", "es", "--out", str(out)], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "no es variant: shows en" in result.output
    html = (out / "asp23-day-4.es.html").read_text(encoding="utf-8")
    assert 'lang="en"' in html


def test_lint_errors_are_reported_and_fail_the_command(tmp_path: Path, env: dict[str, str]) -> None:
    text = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    bad = tmp_path / "bad.en.md"
    bad.write_text(text.replace("    link: https://asp.icc-cpi.int/asp23", "    link: http://asp.icc-cpi.int/asp23"),
                   encoding="utf-8")
    result = run(["preview", str(bad), "--subscriber-languages", "en,fr", "--out", str(tmp_path / "o")], env, tmp_path)
    assert result.exit_code == 1
    assert "error: [en] insecure-link: the link http://asp.icc-cpi.int/asp23" in result.output
    assert "warning: [fr] missing-variant" in result.output
    assert "lint error(s)" in result.output
    assert (tmp_path / "o" / "asp23-day-3.en.html").exists()  # written anyway, to look at


def test_content_error_is_a_clean_message(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.en.md"
    bad.write_text("---\nkind: daily-summary\nlist: asp-daily\nslug: x\nday: two\n---\n", encoding="utf-8")
    result = run(["preview", str(bad)], env, tmp_path)
    assert result.exit_code == 1
    assert f"Error: {bad}:" in result.output
    assert "Traceback" not in result.output


def test_subscriber_languages_come_from_the_store(tmp_path: Path, env: dict[str, str], sqlite_store: Store,
                                                  clock) -> None:  # noqa: ANN001
    with sqlite_store.session() as session:
        mailing_list = lists_lib.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "ar"],
                                             now=clock())
        for i, (language, status) in enumerate([("en", SubscriptionStatus.ACTIVE), ("es", SubscriptionStatus.ACTIVE),
                                                ("es", SubscriptionStatus.ACTIVE), ("de", SubscriptionStatus.PENDING)]):
            person = Subscriber(key=f"k{i}", email=f"p{i}@example.org", name="", language=language,
                                created_at=clock(), updated_at=clock())
            session.add(person)
            session.flush()
            session.add(Subscription(subscriber_id=person.id, list_id=mailing_list.id, status=status,
                                     created_at=clock()))
        assert lists_lib.languages_in_use(session, "asp-daily") == {"es": 2, "en": 1}
    env = {**env, "NEWSLETTER_DATABASE_URL": str(sqlite_store.engine.url)}
    result = run(["preview", str(EXAMPLES / "asp23" / "day-4.*.md"), "--out", str(tmp_path / "o")], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "active subscribers by language: es 2, en 1; fallback en > fr > ar" in result.output
    assert "warning: [es] missing-variant: no es variant: subscribers who read es will get the en one" in result.output


def test_help_has_an_example(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["preview", "--help"], env, tmp_path)
    assert "Example: newsletter preview" in result.output


def _misspelt(tmp_path: Path) -> list[Path]:
    """The alert's content files with `list: alerts` misspelt `list: alrets`."""
    copies = []
    for path in sorted((EXAMPLES / "alerts").glob("*.md")):
        copies.append(tmp_path / path.name)
        copies[-1].write_text(path.read_text(encoding="utf-8").replace("\nlist: alerts\n", "\nlist: alrets\n"),
                              encoding="utf-8")
    assert "list: alrets" in copies[0].read_text(encoding="utf-8")
    return copies


def test_a_misspelt_list_is_said_plainly_before_anything_is_written(tmp_path: Path, env: dict[str, str],
                                                                     sqlite_store: Store, clock) -> None:
    with sqlite_store.session() as session:
        for slug in ("alerts", "asp-daily"):
            lists_lib.create_list(session, slug, slug.title(), now=clock())
    env = {**env, "NEWSLETTER_DATABASE_URL": str(sqlite_store.engine.url)}
    out = tmp_path / "o"
    files = _misspelt(tmp_path)
    result = run(["preview", *map(str, files), str(EXAMPLES / "asp23" / "day-4.*.md"), "--out", str(out)],
                 env, tmp_path)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"Error: there is no list 'alrets', which `list:` names in {tmp_path / 'defend-the-court.en.md'}" \
        in result.output
    assert "the lists there are: alerts, asp-daily; did you mean 'alerts'?" in result.output
    assert "Correct `list:` in the front matter, or create the list with `newsletter lists create alrets NAME`" \
        in result.output
    assert not out.exists()  # nothing written, not even the issue whose list is right


def test_a_list_in_no_database_yet_is_not_checked(tmp_path: Path, env: dict[str, str]) -> None:
    result = run(["preview", *map(str, _misspelt(tmp_path)), "--out", str(tmp_path / "o")], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "no database yet: subscribers' languages and the list not checked" in result.output
