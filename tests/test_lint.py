"""Lint: each rule fires on a crafted bad input, and the examples are clean."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.errors import LintFailed
from newsletter.mail.compose import RenderedMail, render_issue
from newsletter.mail.content import load_issue, load_issues
from newsletter.mail.lint import (
    SIZE_ERROR,
    SIZE_WARNING,
    Severity,
    encoded_size,
    lint_issue,
    lint_mail,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def compose_config() -> Config:
    return Config(base_url="https://news.example.org", templates_dir=str(REPO / "templates"),
                  secret_key="test-secret-key-0123456789abcdef")


@pytest.fixture(scope="module")
def good(compose_config: Config) -> RenderedMail:
    return render_issue(compose_config, load_issue(EXAMPLES / "asp23" / "day-3.en.md"))["en"]


def rules(mail: RenderedMail, severity: Severity = Severity.ERROR) -> set[str]:
    return {p.rule for p in lint_mail(mail) if p.severity is severity}


def test_every_example_is_clean(compose_config: Config) -> None:
    for issue in load_issues([EXAMPLES / "asp23", EXAMPLES / "alerts"]):
        report = lint_issue(render_issue(compose_config, issue), subscriber_languages=("en", "fr", "ar"))
        assert report.problems == (), (issue.slug, report.format())
        report.raise_for_errors()


def test_oversized_html_is_an_error_and_nearly_oversized_a_warning(good: RenderedMail) -> None:
    padding = "<p>" + "x" * 1000 + "</p>"
    base = encoded_size(good.html)
    near = replace(good, html=good.html.replace("</body>", padding * ((SIZE_WARNING - base) // 1000 + 2) + "</body>"))
    assert SIZE_WARNING < encoded_size(near.html) < SIZE_ERROR
    assert "size" in rules(near, Severity.WARNING) and "size" not in rules(near)
    big = replace(good, html=good.html.replace("</body>", padding * ((SIZE_ERROR - base) // 1000 + 2) + "</body>"))
    assert "size" in rules(big)


def test_size_counts_encoded_bytes_not_characters() -> None:
    import quopri

    arabic = "<p>" + "ع" * 1000 + "</p>"
    assert encoded_size(arabic) > len(arabic.encode("utf-8")) > 1.9 * len(arabic)
    # As the message builder sends it: base64 here, smaller than quoted-printable's 3 bytes a byte.
    assert encoded_size(arabic) < len(quopri.encodestring(arabic.encode("utf-8"))) * 0.5


def test_missing_unsubscribe_link(good: RenderedMail) -> None:
    assert "unsubscribe" not in rules(good)
    no_html = replace(good, html=good.html.replace('href="[[nl:unsubscribe_url]]"', 'href="https://example.org/"'))
    assert "unsubscribe" in rules(no_html)
    no_text = replace(good, text=good.text.replace("[[nl:unsubscribe_url]]", ""))
    assert "unsubscribe" in rules(no_text)


def test_image_without_alt(good: RenderedMail) -> None:
    with_alt = replace(good, html=good.html.replace("</body>", '<img src="https://example.org/a.png" alt="A room"></body>'))
    assert "image-alt" not in rules(with_alt)
    for tag in ('<img src="https://example.org/a.png">', '<img src="https://example.org/a.png" alt="  ">'):
        assert "image-alt" in rules(replace(good, html=good.html.replace("</body>", tag + "</body>")))


def test_image_alt_required_in_content(tmp_path: Path) -> None:
    from newsletter.errors import ContentError
    from newsletter.mail.content import load_variant
    text = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    path = tmp_path / "d.en.md"
    path.write_text(text.replace("session: ASP 23", "image:\n  src: https://example.org/a.png\nsession: ASP 23"))
    with pytest.raises(ContentError, match="alt"):
        load_variant(path)


@pytest.mark.parametrize(("url", "severity"), [
    ("http://example.org/page", Severity.ERROR),
    ("javascript:alert(1)", Severity.ERROR),
    ("/relative/page", Severity.ERROR),
    ("http://127.0.0.1:8000/archive/x", Severity.WARNING),
])
def test_non_https_links(good: RenderedMail, url: str, severity: Severity) -> None:
    bad = replace(good, html=good.html.replace("</body>", f'<a href="{url}">x</a></body>'))
    assert "insecure-link" in rules(bad, severity)
    assert "insecure-link" not in rules(good) and "insecure-link" not in rules(good, Severity.WARNING)


def test_non_https_link_in_text_part(good: RenderedMail) -> None:
    bad = replace(good, text=good.text + "\nSee http://example.org/plain\n")
    assert "insecure-link" in rules(bad)


def test_non_https_image(good: RenderedMail) -> None:
    bad = replace(good, html=good.html.replace("</body>", '<img src="http://example.org/a.png" alt="A"></body>'))
    assert "insecure-link" in rules(bad)


@pytest.mark.parametrize("leftover", ["{{ nmae }}", "{% if x %}", "%(name)s", "[[nl:nickname]]"])
def test_unresolved_template_variables(good: RenderedMail, leftover: str) -> None:
    bad = replace(good, text=good.text + leftover)
    assert "unresolved" in rules(bad)
    assert "unresolved" in rules(replace(good, subject="Hi " + leftover))
    assert "unresolved" not in rules(good)


def test_unresolved_placeholder_from_content_file(tmp_path: Path, compose_config: Config) -> None:
    text = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    (tmp_path / "d.en.md").write_text(text.replace("Follow the session", "Dear {{ nmae }}, follow the session"))
    report = lint_issue(render_issue(compose_config, load_issue(tmp_path)))
    assert "unresolved" in report.rules(Severity.ERROR)
    assert any("{{ nmae }}" in p.message for p in report.errors)


def test_missing_variant_for_a_subscriber_language(compose_config: Config) -> None:
    rendered = render_issue(compose_config, load_issue(EXAMPLES / "asp23" / "day-4.*.md"))  # no es variant
    assert lint_issue(rendered, subscriber_languages=("en", "fr", "ar")).ok
    report = lint_issue(rendered, subscriber_languages=("en", "es"))
    assert "missing-variant" in report.rules(Severity.WARNING)  # Spanish readers fall back to English
    assert report.ok
    only_fr = {"fr": rendered["fr"]}
    report = lint_issue(only_fr, subscriber_languages=("es",), fallback_chain=("en",))
    assert "missing-variant" in report.rules(Severity.ERROR)
    assert not report.ok
    with pytest.raises(LintFailed, match="missing-variant"):
        report.raise_for_errors()
    assert lint_issue(only_fr, subscriber_languages=("es",), fallback_chain=("fr",)).ok


def test_subject_missing_or_too_long(good: RenderedMail) -> None:
    assert "subject" in rules(replace(good, subject=""))
    assert "subject" in rules(replace(good, subject="x" * 151))
    assert "subject" not in rules(replace(good, subject="x" * 150))


def test_missing_subject_in_content_is_reported_by_lint(tmp_path: Path, compose_config: Config) -> None:
    text = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("subject:")]
    (tmp_path / "d.en.md").write_text("".join(lines))
    report = lint_issue(render_issue(compose_config, load_issue(tmp_path)))
    assert "subject" in report.rules(Severity.ERROR)


def test_missing_preheader_is_a_warning(good: RenderedMail) -> None:
    assert "preheader" in rules(replace(good, preheader=""), Severity.WARNING)


def test_report_format(good: RenderedMail) -> None:
    report = lint_issue({"en": replace(good, subject="")})
    assert "error: [en] subject:" in report.format()
    assert lint_issue({"en": good}).format() == "lint: no problems"
