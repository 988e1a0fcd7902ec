"""Editor-authored Markdown made safe for mail: HTML without raw HTML, and readable plain text.

Markdown is parsed by markdown-it-py with raw HTML disabled, so whatever an editor types is
escaped, and link targets other than http(s)/mailto are refused by its link validation. In a
right-to-left variant, runs of Latin script ("ICC", "Rome Statute") are isolated so that
neighbouring punctuation and numbers keep their places: in HTML with `<span dir="ltr">` (the
name, whose direction nobody knows, with `dir="auto"`), in text with LRI…PDI. Not `<bdi>`:
Gmail and Outlook drop it (caniemail), and "708 3rd Avenue … USA" then reads "3rd Avenue …
USA 708", "#NGOVoices" "NGOVoices#"; a `dir` attribute on an inline element they keep, and
HTML gives such an element the isolation `<bdi>` has.

The plain-text form is written for reading: paragraphs wrapped, lists with bullets or
numbers, and each link's label followed by a reference `[n]` whose address is listed at the
end of the mail (`Links.listing`).
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markupsafe import Markup

from .personalise import MARKER_PATTERN

__all__ = ["Links", "markdown_html", "markdown_inline_html", "markdown_text", "isolate_html",
           "isolate_text", "wrap_text", "LRI", "FSI", "PDI", "WIDTH"]

LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"
#: Plain-text lines are wrapped at this width.
WIDTH = 72

# A run of Latin script: starts with a Latin letter, may hold digits, spaces and the
# punctuation found inside names and document symbols, ends on a letter, digit or bracket.
_LATIN = "A-Za-z\u00c0-\u024f"
_LATIN_RUN = re.compile(rf"(?:[0-9][0-9 ,./-]*)?[#@]?[{_LATIN}](?:[{_LATIN}0-9 .,'’/&:()#-]*[{_LATIN}0-9)])?")


def _isolate(text: str, wrap_run, escape, wrap_marker) -> str:
    out = []
    last = 0
    for m in MARKER_PATTERN.finditer(text):
        out.append(_isolate_plain(text[last:m.start()], wrap_run, escape))
        out.append(wrap_marker(m.group(0)))
        last = m.end()
    out.append(_isolate_plain(text[last:], wrap_run, escape))
    return "".join(out)


def _isolate_plain(text: str, wrap_run, escape) -> str:
    out = []
    last = 0
    for m in _LATIN_RUN.finditer(text):
        run = m.group(0)
        if run.endswith(")") and "(" not in run:  # "(ICC)": the brackets belong outside
            run = run[:-1]
        out.append(escape(text[last:m.start()]))
        out.append(wrap_run(escape(run)))
        last = m.start() + len(run)
    out.append(escape(text[last:]))
    return "".join(out)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


_NAME_MARKER = "[[nl:name]]"


def _isolate_name(m: str) -> str:
    return f'<span dir="auto">{m}</span>' if m == _NAME_MARKER else m


def isolate_html(text: str, rtl: bool) -> Markup:
    """`text` escaped for HTML; the name marker always in `<span dir="auto">`, and Latin runs
    in RTL in `<span dir="ltr">`."""
    if not rtl:
        return Markup(MARKER_PATTERN.sub(lambda m: _isolate_name(m.group(0)), _escape(text)))
    return Markup(_isolate(text, lambda s: f'<span dir="ltr">{s}</span>', _escape, _isolate_name))


def isolate_text(text: str, rtl: bool) -> str:
    """`text` with Latin runs (LRI…PDI) and the name marker (FSI…PDI) isolated when `rtl`."""
    if not rtl:
        return text
    return _isolate(text, lambda s: f"{LRI}{s}{PDI}", lambda s: s,
                    lambda m: f"{FSI}{m}{PDI}" if m == _NAME_MARKER else m)


def _render_text_token(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    return str(isolate_html(tokens[idx].content, bool(env.get("rtl"))))


def _render_link_open(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    tokens[idx].attrSet("target", "_blank")
    return self.renderToken(tokens, idx, options, env)


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MD.add_render_rule("text", _render_text_token)
_MD.add_render_rule("link_open", _render_link_open)


def markdown_html(text: str, *, rtl: bool = False) -> Markup:
    """Block Markdown as safe HTML (paragraphs, lists, links, emphasis; raw HTML escaped)."""
    return Markup(_MD.render(text, {"rtl": rtl}))


def markdown_inline_html(text: str, *, rtl: bool = False) -> Markup:
    """One line of Markdown as safe inline HTML (no paragraph around it)."""
    return Markup(_MD.renderInline(text, {"rtl": rtl}))


# --------------------------------------------------------------------------------------- text


@dataclass
class Links:
    """The addresses referenced in a plain-text part, numbered in order of first use."""

    urls: list[str] = field(default_factory=list)

    def ref(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def listing(self) -> list[str]:
        return [f"[{i}] {url}" for i, url in enumerate(self.urls, 1)]


def _inline_text(children, links: Links, rtl: bool) -> str:  # noqa: ANN001
    out: list[str] = []
    pending: list[str] = []
    for tok in children or ():
        if tok.type == "text":
            out.append(isolate_text(tok.content, rtl))
        elif tok.type == "code_inline":
            out.append(tok.content)
        elif tok.type == "softbreak":
            out.append(" ")
        elif tok.type == "hardbreak":
            out.append("\n")
        elif tok.type == "link_open":
            pending.append(tok.attrGet("href") or "")
        elif tok.type == "link_close":
            href = pending.pop() if pending else ""
            if href:
                out.append(f" [{links.ref(href)}]")
        elif tok.type == "image":
            alt = tok.content or "image"
            out.append(f"[{isolate_text(alt, rtl)}] [{links.ref(tok.attrGet('src') or '')}]")
    return "".join(out)


_ISOLATED = re.compile(f"[{LRI}{FSI}][^{PDI}]*{PDI}")


def wrap_text(text: str, first: str = "", rest: str = "") -> str:
    """`text` wrapped at WIDTH with the given indents; an isolated run is never split."""
    lines = []
    keep = _ISOLATED.sub(lambda m: m.group(0).replace(" ", "\x00"), text)
    for i, line in enumerate(keep.split("\n")):
        lines.append(textwrap.fill(line, WIDTH, initial_indent=first if i == 0 else rest,
                                   subsequent_indent=rest, break_long_words=False,
                                   break_on_hyphens=False) or (first if i == 0 else rest).rstrip())
    return "\n".join(lines).replace("\x00", " ")


def markdown_text(text: str, links: Links, *, rtl: bool = False, inline: bool = False,
                  indent: str = "") -> str:
    """Markdown as plain text for reading: wrapped paragraphs, bullets, numbered references.

    Link addresses are added to `links`; the caller lists them (`links.listing()`).
    With `inline`, `text` is one line of Markdown and the result is not wrapped.
    """
    if inline:
        return _inline_text(_MD.parseInline(text)[0].children, links, rtl)
    blocks: list[str] = []
    groups: list[int | None] = []  # the open list each block belongs to (tight lists stay together)
    stack: list[list] = []  # [kind, counter, serial] for open lists
    serial = 0
    quote = 0
    prefix_next = ""
    for tok in _MD.parse(text):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if tok.type == "ordered_list_open" else 0
            serial += 1
            stack.append(["ol" if start else "ul", start, serial])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            stack.pop()
        elif tok.type == "list_item_open":
            kind, counter, _ = stack[-1]
            depth = "  " * (len(stack) - 1)
            if kind == "ol":
                prefix_next = f"{depth}{counter}. "
                stack[-1][1] += 1
            else:
                prefix_next = f"{depth}- "
        elif tok.type == "blockquote_open":
            quote += 1
        elif tok.type == "blockquote_close":
            quote -= 1
        elif tok.type == "inline":
            body = _inline_text(tok.children, links, rtl)
            lead = indent + "> " * quote
            if prefix_next:
                first, rest = lead + prefix_next, lead + " " * len(prefix_next)
                prefix_next = ""
            elif stack:
                first = rest = lead + "  " * len(stack)
            else:
                first = rest = lead
            blocks.append(wrap_text(body, first, rest))
            groups.append(stack[-1][2] if stack else None)
        elif tok.type in ("fence", "code_block"):
            blocks.append("\n".join(indent + "    " + line for line in tok.content.rstrip("\n").split("\n")))
            groups.append(None)
        elif tok.type == "hr":
            blocks.append(indent + "-" * 20)
            groups.append(None)
        elif tok.type == "heading_close":
            # Underline the heading just written.
            title = blocks[-1] if blocks else ""
            mark = "=" if tok.tag == "h1" else "-"
            blocks[-1] = f"{title}\n{indent}{mark * min(len(title.strip()), WIDTH)}"
    # Items of one list stay together; everything else is separated by a blank line.
    out = blocks[:1]
    for i in range(1, len(blocks)):
        together = groups[i] is not None and groups[i] == groups[i - 1]
        out.append(("\n" if together else "\n\n") + blocks[i])
    return "".join(out)
