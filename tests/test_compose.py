"""Compose: issues rendered once per language, CSS inlined, text parts, RTL, personalisation."""

from __future__ import annotations

import re
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import Config
from newsletter.errors import MissingVariant
from newsletter.mail.compose import (
    RenderedMail,
    archive_url,
    inline_css,
    render_confirmation,
    render_issue,
    variant_for,
)
from newsletter.mail.content import load_issue
from newsletter.mail.markup import LRI, PDI
from newsletter.mail.personalise import Field, fill

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
HOSTILE = "<script>alert(1)</script> {{7*7}} ${7*7} & \"Bob\""


@pytest.fixture
def compose_config() -> Config:
    return Config(
        base_url="https://news.example.org",
        postal_address="Bezuidenhoutseweg 99, 2594 AC The Hague, Netherlands",
        templates_dir=str(REPO / "templates"),
        secret_key="test-secret-key-0123456789abcdef",
    )


@pytest.fixture
def day3(compose_config: Config) -> dict[str, RenderedMail]:
    return render_issue(compose_config, load_issue(EXAMPLES / "asp23" / "day-3.*.md"))


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def recipient(name: str = "Ada Reader") -> dict[Field, str]:
    return {
        Field.NAME: name,
        Field.EMAIL: "ada@example.org",
        Field.UNSUBSCRIBE_URL: "https://news.example.org/u/TOKEN-1",
        Field.PREFERENCES_URL: "https://news.example.org/p/TOKEN-1",
    }


def test_one_rendered_mail_per_language(day3: dict[str, RenderedMail]) -> None:
    assert {"en", "fr", "ar"} <= set(day3)
    for language, mail in day3.items():
        assert mail.language == language
        assert mail.subject and mail.text and mail.html
        assert mail.browser_url == f"https://news.example.org/archive/asp-daily/asp23-day-3/{language}"


def test_css_is_inlined_and_no_style_rules_are_left(day3: dict[str, RenderedMail]) -> None:
    doc = soup(day3["en"].html)
    assert not doc.find_all("style"), "every rule must be inlined: clients drop <style>"
    h1 = doc.find("h1")
    assert "font-size:24px" in h1["style"].replace(" ", "")
    card = doc.find("table", class_="card")
    assert "max-width:600px" in card["style"].replace(" ", "")
    # Table-based layout: the content sits in table cells, and Outlook (which ignores
    # max-width) gets a fixed 600 px table of its own.
    assert doc.find("td", class_="content") is not None
    assert '<!--[if mso]><table role="presentation" width="600"' in day3["en"].html
    for link in doc.find_all("a"):
        assert "color" in link.get("style", ""), link


def test_footer_has_address_reason_and_links(day3: dict[str, RenderedMail], compose_config: Config) -> None:
    doc = soup(day3["en"].html)
    footer = doc.find("td", class_="footer")
    text = footer.get_text(" ", strip=True)
    assert compose_config.postal_address in text
    assert compose_config.organisation_name in text
    assert "because you subscribed to ASP daily summaries" in text
    hrefs = [a["href"] for a in footer.find_all("a")]
    assert "[[nl:unsubscribe_url]]" in hrefs
    assert "[[nl:preferences_url]]" in hrefs
    assert day3["en"].browser_url in hrefs
    assert archive_url(compose_config, "asp-daily", "asp23-day-3", "en") in hrefs


def test_arabic_is_right_to_left_throughout(day3: dict[str, RenderedMail]) -> None:
    doc = soup(day3["ar"].html)
    assert doc.html["lang"] == "ar" and doc.html["dir"] == "rtl"
    assert doc.body["dir"] == "rtl"
    for cell in doc.select("td.content, td.footer, td.masthead"):
        assert cell["dir"] == "rtl"
        assert "text-align:right" in cell["style"].replace(" ", "")
    ul = doc.find("ul")
    assert "padding-right:22px" in ul["style"].replace(" ", "")
    # Latin names are isolated so they do not scramble the Arabic sentence around them, with
    # markup Gmail and Outlook keep (they drop <bdi>).
    isolated = [b.get_text() for b in doc.find_all("span", dir="ltr")]
    assert "ICC" in isolated and "Rome Statute" in isolated
    assert "Human Rights Watch" in isolated
    assert not doc.find_all("bdi")
    # The footer's translated strings are Arabic.
    assert "إلغاء الاشتراك" in doc.find("td", class_="footer").get_text()
    # Text part: Latin runs inside LRI…PDI.
    assert f"{LRI}Rome Statute{PDI}" in day3["ar"].text


def test_the_preheader_is_hidden_without_a_low_contrast_colour(day3: dict[str, RenderedMail]) -> None:
    """Text coloured like its background costs +0.7 in SpamAssassin on every issue."""
    for language in ("en", "ar"):
        preheader = soup(day3[language].html).find("div", class_="preheader")
        style = preheader["style"].replace(" ", "")
        for rule in ("display:none", "max-height:0", "opacity:0", "mso-hide:all"):
            assert rule in style, (language, rule)
        assert "color" not in style, language
        assert day3[language].preheader.split()[0] in preheader.get_text()


def test_english_and_french_are_left_to_right(day3: dict[str, RenderedMail]) -> None:
    for language in ("en", "fr"):
        doc = soup(day3[language].html)
        assert doc.html["lang"] == language and doc.html["dir"] == "ltr"
    assert "Se désabonner" in soup(day3["fr"].html).find("td", class_="footer").get_text()


def test_text_part_is_written_for_reading(day3: dict[str, RenderedMail]) -> None:
    text = day3["en"].text
    assert "<" not in text.replace("<<", "")  # no markup
    assert "Highlights\n----------" in text
    assert "Statements delivered" in text
    assert "Read more: https://www.coalitionfortheicc.org/news/asp23-review-plenary" in text
    assert "  https://www.coalitionfortheicc.org/statements/asp23-review-hrw" in text
    # A link inside prose becomes a numbered reference, listed at the end.
    assert "ASP 23 page [1]" in text
    assert "[1] https://www.coalitionfortheicc.org/asp23" in text
    assert "Unsubscribe: [[nl:unsubscribe_url]]" in text
    assert "708 3rd Avenue" not in text and "Bezuidenhoutseweg 99" in text
    # Prose is wrapped for reading.
    lead = text.split("Day 3 of the 23rd")[1].split("\n\n")[0]
    assert all(len(line) <= 80 for line in lead.splitlines())


def test_markdown_from_editors_is_rendered_safely(tmp_path: Path, compose_config: Config) -> None:
    source = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    source = source.replace("and forward this summary", "<script>alert(1)</script> [x](javascript:alert(2)) "
                            "<img src=x onerror=alert(3)> and forward this summary")
    (tmp_path / "day-3.en.md").write_text(source, encoding="utf-8")
    mail = render_issue(compose_config, load_issue(tmp_path))["en"]
    doc = soup(mail.html)
    assert not doc.find_all("script")
    assert not doc.find_all("img")
    assert not any(a["href"].startswith("javascript:") for a in doc.find_all("a"))
    assert "&lt;script&gt;" in mail.html


def test_hostile_name_is_escaped_after_personalising(tmp_path: Path, compose_config: Config) -> None:
    source = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    (tmp_path / "day-3.en.md").write_text(source.replace("Follow the session", "Dear {{ name }}, follow the session"),
                                          encoding="utf-8")
    mail = render_issue(compose_config, load_issue(tmp_path))["en"]
    assert "[[nl:name]]" in mail.html and "[[nl:name]]" in mail.text
    html = fill(mail.html, recipient(HOSTILE), html_part=True)
    text = fill(mail.text, recipient(HOSTILE), html_part=False)
    doc = soup(html)
    assert not doc.find_all("script")
    assert "49" not in doc.get_text()
    name = doc.find("span", dir="auto")
    assert name.get_text() == HOSTILE  # shown as typed, not interpreted
    assert "&lt;script&gt;" in html
    assert "Dear " + HOSTILE + ", follow" in text  # the text part is not HTML: as typed
    assert "https://news.example.org/u/TOKEN-1" in html and "[[nl:" not in html


def test_per_recipient_filling_does_not_rerender(day3: dict[str, RenderedMail]) -> None:
    mail = day3["en"]
    one = fill(mail.html, recipient("One"), html_part=True)
    two = fill(mail.html, recipient("Two"), html_part=True)
    assert one.replace("TOKEN-1", "") == two.replace("TOKEN-1", "")  # only per-recipient values differ
    assert "https://news.example.org/u/TOKEN-1" in one


def test_variant_for_follows_the_fallback_chain() -> None:
    assert variant_for("fr", ("en", "fr", "ar")) == "fr"
    assert variant_for("es", ("en", "fr", "ar")) == "en"
    assert variant_for("es", ("en", "fr", "ar"), ("fr", "en")) == "fr"
    assert variant_for("es", ("ar", "fr"), ("en", "ar")) == "ar"
    assert variant_for(None, ("en", "fr")) == "en"
    assert variant_for("ar", ("fr",), ("ar", "fr")) == "fr"
    with pytest.raises(MissingVariant, match="no variant for language 'es'"):
        variant_for("es", ("fr", "ar"))


def test_confirmation_uses_the_base_layout(compose_config: Config) -> None:
    mail = render_confirmation(compose_config, "ar", HOSTILE, "https://news.example.org/c/T",
                               "https://news.example.org/b/T", ["ASP daily summaries"])
    doc = soup(mail.html)
    assert doc.html["dir"] == "rtl" and doc.html["lang"] == "ar"
    assert not doc.find_all("style") and not doc.find_all("script")
    assert doc.find("td", class_="masthead") is not None
    footer = doc.find("td", class_="footer").get_text(" ", strip=True)
    assert compose_config.postal_address in footer
    assert "https://news.example.org/c/T" in [a["href"] for a in doc.find_all("a")]
    assert "[[nl:" not in mail.html  # nothing left for a sender to fill: it is sent as is
    assert "Confirm" not in mail.subject and mail.subject
    assert "https://news.example.org/c/T" in mail.text


def test_inline_css_keeps_markers() -> None:
    html = inline_css('<html><head><style>a{color:red}</style></head><body>'
                      '<a href="[[nl:unsubscribe_url]]">x</a> [[nl:name]]</body></html>')
    assert 'href="[[nl:unsubscribe_url]]"' in html and "[[nl:name]]" in html
    assert re.search(r'style="color:\s*red"', html)


def test_personalised_equals_fill_on_each_part(day3: dict[str, RenderedMail]) -> None:
    for mail in day3.values():
        values = recipient(HOSTILE)
        subject, text, html = mail.personalised(values)
        assert subject == fill(mail.subject, values, html_part=False)
        assert text == fill(mail.text, values, html_part=False)
        assert html == fill(mail.html, values, html_part=True)
        assert mail.personalised(recipient("Other"))[2] == fill(mail.html, recipient("Other"), html_part=True)


def test_mostly_latin_html_is_kept_narrow(day3: dict[str, RenderedMail]) -> None:
    from newsletter.mail.compose import narrow_html
    assert max(day3["en"].html) <= "\xff"  # the preheader padding became character references
    assert "&#8199;" in day3["en"].html
    assert "المحكمة" in day3["ar"].html  # Arabic stays as characters
    page = "<p>" + "x" * 100 + " it’s</p>"
    assert narrow_html(page) == "<p>" + "x" * 100 + " it&#8217;s</p>"
    assert soup(narrow_html(page)).get_text().endswith("it’s")
    assert narrow_html("<p>المحكمة</p>") == "<p>المحكمة</p>"


def test_optional_image_has_alt_and_shrinks(tmp_path: Path, compose_config: Config) -> None:
    source = (EXAMPLES / "asp23" / "day-3.en.md").read_text(encoding="utf-8")
    source = source.replace("session: ASP 23", "image:\n  src: https://example.org/hall.jpg\n"
                            "  alt: Delegates in the plenary hall\n  width: 400\nsession: ASP 23")
    (tmp_path / "day-3.en.md").write_text(source, encoding="utf-8")
    mail = render_issue(compose_config, load_issue(tmp_path))["en"]
    img = soup(mail.html).find("img")
    assert img["alt"] == "Delegates in the plenary hall" and img["width"] == "400"
    assert "max-width:400px" in img["style"].replace(" ", "")
    assert "[Delegates in the plenary hall]" in mail.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=40))
def test_any_name_shows_as_typed_and_adds_no_markup(day3: dict[str, RenderedMail], name: str) -> None:
    mail = day3["ar"]
    html = mail.personalised(recipient(name))[2]
    before = len(soup(mail.html).find_all(True))
    doc = soup(html)
    assert len(doc.find_all(True)) == before


class _Words(HTMLParser):
    """The text an HTML fragment shows, every character kept (BeautifulSoup 4.15's get_text
    folds the spaces after an end tag: it found 'A  ' shown as 'A ')."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.feed(html)
        self.close()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def __str__(self) -> str:
        return "".join(self.parts)


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60))
def test_isolation_never_changes_the_words(text: str) -> None:
    from newsletter.mail.markup import FSI, isolate_html, isolate_text
    for rtl in (False, True):
        shown = str(_Words(f"<p>{isolate_html(text, rtl)}</p>"))
        assert shown == str(_Words(f"<p>{html_escape(text)}</p>"))
        plain = isolate_text(text, rtl)
        for mark in (LRI, FSI, PDI):
            plain = plain.replace(mark, "")
        assert plain == text.replace(LRI, "").replace(FSI, "").replace(PDI, "")


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_mail_string_is_translated(language: str) -> None:
    from babel.messages.pofile import read_po
    from jinja2.ext import babel_extract
    with (REPO / "templates" / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=language)
    missing, seen = [], 0
    for template in sorted((REPO / "templates" / "email").glob("*.*")):
        with template.open("rb") as fh:
            for _, _, message, _ in babel_extract(fh, ("_", "gettext"), [], {"extensions": "jinja2.ext.i18n",
                                                                               "trim_blocks": "true",
                                                                               "lstrip_blocks": "true"}):
                msgid = message if isinstance(message, str) else message[0]
                seen += 1
                entry = catalog.get(msgid)
                if entry is None or not entry.string:
                    missing.append(f"{template.name}: {msgid}")
    assert seen > 20 and missing == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30) |
                      st.sampled_from(["<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
                                       "[x](javascript:alert(1))", "\"><svg onload=alert(1)>", "{{ 7*7 }}",
                                       "*a*", "`code`", "ICC", "المحكمة"]), min_size=1, max_size=4),
       language=st.sampled_from(["en", "ar"]))
def test_editor_text_never_becomes_markup(compose_config: Config, words: list[str], language: str) -> None:
    import dataclasses

    from newsletter.mail.compose import render_variant
    issue = load_issue(EXAMPLES / "alerts")
    variant = issue.variants[language]
    text = " ".join(words)
    fields = dataclasses.replace(variant.fields, headline=text or "x", call=text or "x", points=(text or "x",))
    mail = render_variant(compose_config, dataclasses.replace(variant, fields=fields, subject=text))
    doc = soup(mail.html)
    assert not doc.find_all(["script", "svg", "iframe", "object"])
    for tag in doc.find_all(True):
        assert not any(attr.lower().startswith("on") for attr in tag.attrs), tag
        for attr in ("href", "src"):
            assert not str(tag.get(attr, "")).lower().lstrip().startswith("javascript:"), tag
