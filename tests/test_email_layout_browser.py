"""The mail in a real browser: English and Arabic at phone (375 px) and desktop (600 px) widths.

Headless Chromium (Debian's package) renders the preview HTML — markers filled as the sender
fills them — and nothing may stick out sideways. Screenshots go to tests/output/browser/
(or $NEWSLETTER_TEST_OUTPUT) for people to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.mail.compose import render_issue
from newsletter.mail.content import load_issue
from newsletter.mail.personalise import fill
from newsletter.mail.preview import SampleRecipient, sample_values

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
OUTPUT = Path(os.environ.get("NEWSLETTER_TEST_OUTPUT", REPO / "tests" / "output")) / "browser"

# Every element whose box reaches past the viewport's edges, and the page's own scroll width.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > width + 0.5 || r.left < -0.5) {
      out.push(`${el.tagName.toLowerCase()}.${el.className || ''} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 10)};
}"""


# The WCAG contrast ratio of every visible piece of text against the background behind it.
CONTRAST_JS = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const worst = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden' || parseFloat(style.opacity) === 0) continue;
    if (el.closest('[style*="display:none"], [style*="display: none"]')) continue;
    const a = lum(rgb(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(`${ratio.toFixed(2)} ${style.color} on ${background(el)}: ${node.textContent.trim().slice(0, 40)}`);
  }
  return worst;
}"""


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages() -> dict[tuple[str, str], str]:
    config = Config(base_url="https://news.example.org", templates_dir=str(REPO / "templates"),
                    secret_key="test-secret-key-0123456789abcdef")
    # A long name without spaces is the hardest thing a reader can bring to the layout.
    values = sample_values(config, SampleRecipient(name="Maximiliana-Alexandrovna-Konstantinopolskaya"))
    out = {}
    for source in (EXAMPLES / "asp23" / "day-3.*.md", EXAMPLES / "alerts"):
        issue = load_issue(source)
        for language, mail in render_issue(config, issue).items():
            out[(issue.slug, language)] = fill(mail.html, values, html_part=True)
    return out


@pytest.mark.parametrize("slug", ["asp23-day-3", "asp23-defend-the-court"])
@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("width", [375, 600])
def test_nothing_overflows_horizontally(browser, pages, slug: str, language: str, width: int) -> None:  # noqa: ANN001
    context = browser.new_context(viewport={"width": width, "height": 800}, java_script_enabled=True)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())  # loopback only: nothing leaves the machine
        page.set_content(pages[(slug, language)], wait_until="load")
        result = page.evaluate(OVERFLOW_JS)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"{slug}.{language}.{width}.png"), full_page=True)
        assert result["scrollWidth"] <= result["width"], result
        assert result["out"] == [], result
        direction = page.evaluate("() => getComputedStyle(document.querySelector('td.content')).direction")
        assert direction == ("rtl" if language == "ar" else "ltr")
        align = page.evaluate("() => getComputedStyle(document.querySelector('td.content')).textAlign")
        assert align == ("right" if language == "ar" else "left")
        card = page.evaluate("() => document.querySelector('table.card').getBoundingClientRect().width")
        assert card <= 600
        assert page.evaluate(CONTRAST_JS) == []  # every text at least 4.5:1 (WCAG AA)
    finally:
        context.close()


# Where two characters of `needle` are drawn, once the page has lost its <bdi> elements (their
# text kept) as Gmail's and Outlook's sanitisers do: [left of a, left of b, top of a, top of b].
POSITIONS_JS = """([selector, needle, a, b]) => {
  for (const el of [...document.querySelectorAll('bdi')]) el.replaceWith(...el.childNodes);
  document.body.normalize();
  const walker = document.createTreeWalker(document.querySelector(selector), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const i = node.textContent.indexOf(needle);
    if (i < 0) continue;
    const box = k => { const r = document.createRange(); r.setStart(node, i + k); r.setEnd(node, i + k + 1);
                       return r.getBoundingClientRect(); };
    return [box(a).left, box(b).left, box(a).top, box(b).top];
  }
  return null;
}"""


@pytest.mark.parametrize("selector,needle,first,second", [
    # "708 3rd Avenue … USA" must not read "3rd Avenue … USA 708".
    ("p.address", "708 3rd Avenue, 24th Floor, New York, NY 10017, USA", "7", "U"),
    # "#NGOVoices" must not read "NGOVoices#".
    ("td.content", "#NGOVoices", "#", "N"),
])
def test_latin_runs_keep_their_order_in_clients_that_drop_bdi(browser, pages, selector: str, needle: str,  # noqa: ANN001
                                                              first: str, second: str) -> None:
    context = browser.new_context(viewport={"width": 600, "height": 800})
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())
        page.set_content(pages[("asp23-day-3", "ar")], wait_until="load")
        left_a, left_b, top_a, top_b = page.evaluate(POSITIONS_JS, [selector, needle, needle.index(first),
                                                                    needle.index(second)])
        assert abs(top_a - top_b) < 2, "the run should sit on one line"
        assert left_a < left_b, f"{needle!r} is drawn out of order in a right-to-left paragraph"
    finally:
        context.close()
