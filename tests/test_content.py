"""Content files: loading an issue's language set, and errors that name file, line and field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import ContentError
from newsletter.mail.content import (
    CampaignAlert,
    DailySummary,
    Kind,
    load_issue,
    load_issues,
    load_variant,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

ALERT = """\
---
kind: campaign-alert
list: alerts
slug: test-alert
subject: Act now
preheader: A short preview line
headline: Defend the Court
call: Write to your **foreign minister** today.
points:
  - First point
  - Second point
cta:
  label: Write now
  link: https://example.org/act
deadline: 2024-12-01
---
Thank you, {{ name }}.
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_day_loads_as_one_issue_with_its_languages() -> None:
    issue = load_issue(EXAMPLES / "asp23" / "day-3.*.md")
    assert issue.slug == "asp23-day-3"
    assert issue.kind is Kind.DAILY_SUMMARY
    assert issue.list == "asp-daily"
    assert {"en", "fr", "ar"} <= set(issue.languages)
    en = issue.variants["en"]
    assert isinstance(en.fields, DailySummary)
    assert en.fields.day == 3 and en.fields.total_days == 6
    assert en.fields.date == date(2024, 12, 4)
    assert en.fields.news and en.fields.news[0].url.startswith("https://")
    assert en.fields.statements[0].speaker


def test_every_example_file_loads() -> None:
    issues = load_issues([EXAMPLES / "asp23", EXAMPLES / "alerts"])
    assert any(issue.kind is Kind.CAMPAIGN_ALERT for issue in issues)
    for issue in issues:
        assert {"en", "fr", "ar"} <= set(issue.languages), issue.slug


def test_alert_fields_and_placeholders_become_markers(tmp_path: Path) -> None:
    variant = load_variant(write(tmp_path, "a.en.md", ALERT))
    assert variant.kind is Kind.CAMPAIGN_ALERT
    assert isinstance(variant.fields, CampaignAlert)
    assert variant.fields.points == ("First point", "Second point")
    assert variant.fields.cta.url == "https://example.org/act"
    assert variant.fields.deadline == date(2024, 12, 1)
    assert variant.body == "Thank you, [[nl:name]]."


def test_unknown_placeholder_is_kept_for_lint(tmp_path: Path) -> None:
    variant = load_variant(write(tmp_path, "a.en.md", ALERT.replace("{{ name }}", "{{ nmae }}")))
    assert "{{ nmae }}" in variant.body


@pytest.mark.parametrize("expression", ["{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                        "{{ 'x' * 1000000000 }}", "{{ 10 ** 10 ** 10 }}"])
def test_sandbox_refuses_unsafe_placeholders(tmp_path: Path, expression: str) -> None:
    path = write(tmp_path, "a.en.md", ALERT.replace("{{ name }}", expression))
    with pytest.raises(ContentError) as err:
        load_variant(path)
    assert err.value.line == 17
    assert "not allowed" in str(err.value)


@pytest.mark.parametrize("text", ["{{ 7*7 }}", "{% for i in range(10**6) %}x{% endfor %}", "{{ name|upper }}",
                                  "{# note #}", "{{ name }} and {{ email|e }}", "{{ lipsum(1000000) }}"])
def test_content_reaches_only_the_placeholders(tmp_path: Path, text: str) -> None:
    """Partners' content is data: loops, filters and expressions are refused when the file is read."""
    path = write(tmp_path, "a.en.md", ALERT.replace("{{ name }}", text))
    with pytest.raises(ContentError) as err:
        load_variant(path)
    assert err.value.line == 17 and "only {{ name }}" in str(err.value)


def test_placeholders_become_markers_and_other_braces_stay_text(tmp_path: Path) -> None:
    variant = load_variant(write(tmp_path, "a.en.md", ALERT.replace("{{ name }}", "{{name}}, {{ email }} {curly}")))
    assert variant.body == "Thank you, [[nl:name]], [[nl:email]] {curly}."


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_with_its_line(tmp_path: Path) -> None:
    """Nine levels of nine aliases would expand to 387 million strings; aliases are refused."""
    bomb = ALERT.replace("deadline: 2024-12-01\n", "deadline: 2024-12-01\n" + _alias_bomb(9))
    with pytest.raises(ContentError) as err:
        load_variant(write(tmp_path, "a.en.md", bomb))
    assert err.value.line == 17 and "aliases" in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / 'a.en.md'}:17:")


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{x: ", "}"), ("- ", "")])
def test_deeply_nested_front_matter_is_refused_not_a_crash(tmp_path: Path, opening: str, closing: str) -> None:
    nested = opening * 5000 + "1" + closing * 5000 if closing else "\n".join("  " * i + "- " for i in range(5000))
    text = ALERT.replace("deadline: 2024-12-01\n", "deadline: 2024-12-01\nextra: " + nested + "\n")
    with pytest.raises(ContentError) as err:
        load_variant(write(tmp_path, "a.en.md", text))
    assert err.value.line is not None and err.value.line >= 16


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (("kind: campaign-alert", "kind: newsletter"), 2, "kind", "daily-summary"),
        (("  link: https://example.org/act", "  link: ftp://example.org/act"), 14, "cta.link", "https://"),
        (("  - Second point\n", "  - Second point\n  - {a: b}\n"), 12, "points[3]", "line of text"),
        (("deadline: 2024-12-01", "deadline: next week"), 15, "deadline", "2024-12-04"),
        (("headline: Defend the Court\n", "headline: Defend the Court\ncolour: red\n"), 8, "colour", "unknown field"),
        (("slug: test-alert", "slug: Test Alert"), 4, "slug", "lower-case"),
        (("call: Write to your **foreign minister** today.\n", ""), 2, "call", "missing"),
        (("  label: Write now", "  label: \"\""), 13, "cta.label", "empty"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, change: tuple[str, str], line: int,
                                         field: str | None, words: str) -> None:
    path = write(tmp_path, "a.en.md", ALERT.replace(*change))
    with pytest.raises(ContentError) as err:
        load_variant(path)
    assert err.value.path == str(path)
    assert err.value.line == line, str(err.value)
    assert err.value.field == field, str(err.value)
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.en.md", ALERT.replace("headline: Defend the Court", "headline: [unclosed"))
    with pytest.raises(ContentError) as err:
        load_variant(path)
    assert err.value.line is not None and 8 <= err.value.line <= 10
    assert "YAML" in str(err.value)


def test_missing_front_matter(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="'---'"):
        load_variant(write(tmp_path, "a.en.md", "Just text\n"))
    with pytest.raises(ContentError, match="not closed"):
        load_variant(write(tmp_path, "b.en.md", "---\nkind: campaign-alert\n"))


def test_daily_summary_checks_its_fields(tmp_path: Path) -> None:
    text = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    bad = text.replace("day: 3\n", "day: 9\n")
    with pytest.raises(ContentError, match="after the last day") as err:
        load_variant(write(tmp_path, "d.en.md", bad))
    assert err.value.field == "day"
    bad = text.replace("    link: https://www.coalitionfortheicc.org/news/asp23-general-debate\n", "")
    with pytest.raises(ContentError) as err:
        load_variant(write(tmp_path, "e.en.md", bad))
    assert err.value.field == "news[2].link" and "https://" in str(err.value)


def test_language_from_file_name_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="file name says 'fr'"):
        load_variant(write(tmp_path, "a.fr.md", ALERT.replace("kind:", "language: en\nkind:")))
    with pytest.raises(ContentError, match="language"):
        load_variant(write(tmp_path, "a.md", ALERT))
    with pytest.raises(ContentError, match="not a language we publish"):
        load_variant(write(tmp_path, "a.de.md", ALERT))


def test_one_issue_per_slug_and_one_file_per_language(tmp_path: Path) -> None:
    write(tmp_path, "a.en.md", ALERT)
    write(tmp_path, "b.en.md", ALERT)
    with pytest.raises(ContentError, match="second en variant"):
        load_issue(tmp_path)
    (tmp_path / "b.en.md").unlink()
    write(tmp_path, "a.fr.md", ALERT.replace("list: alerts", "list: asp-daily"))
    with pytest.raises(ContentError, match="must agree"):
        load_issue(tmp_path)
    write(tmp_path, "a.fr.md", ALERT.replace("slug: test-alert", "slug: other"))
    assert len(load_issues([tmp_path])) == 2
    with pytest.raises(ContentError, match="one issue"):
        load_issue(tmp_path)


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="no such file"):
        load_issue(tmp_path / "nothing.en.md")
    with pytest.raises(ContentError, match="no content files"):
        load_issue(str(tmp_path / "*.md"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.text(max_size=80), where=st.sampled_from(["headline", "call", "points", "cta", "deadline", "slug"]))
def test_any_value_loads_or_fails_with_a_content_error(tmp_path: Path, junk: str, where: str) -> None:
    lines = ALERT.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(where + ":"))
    lines[index] = f"{where}: {junk}\n"
    path = write(tmp_path, "p.en.md", "".join(lines))
    try:
        load_variant(path)
    except ContentError as exc:
        assert exc.line is not None and exc.line >= 1
        assert str(path) in str(exc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_any_file_loads_or_fails_with_a_content_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "r.en.md"
    path.write_bytes(b"---\nkind: campaign-alert\n" + raw)
    try:
        load_variant(path)
    except ContentError:
        pass
