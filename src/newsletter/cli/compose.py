"""`newsletter preview`: render content files, lint them and write what a reader would get."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from ..config import LANGUAGES
from ..errors import NewsletterError, UnknownList
from ..mail.compose import DEFAULT_FALLBACK, render_issue
from ..mail.content import load_issues
from ..mail.issue import Issue
from ..mail.lint import lint_issue
from ..mail.preview import write_preview
from ..sending.launch import list_readers
from . import State, main


def _audience(state: State, issue: Issue) -> tuple[tuple[str, ...] | None, tuple[str, ...], str, str]:
    """(languages the list's subscribers read, the list's fallback chain, a note for people,
    the list's name or "").

    The languages are None when no database is configured or it cannot be asked. Raises
    UnknownList when the store has no list the issue's `list:` names.
    """
    config = state.config
    url = config.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url and not Path(url[len("sqlite:///"):]).exists():
        return None, DEFAULT_FALLBACK, "no database yet: subscribers' languages and the list not checked", ""
    try:
        files = tuple(v.path for v in issue.variants.values())
        in_use, chain, name = list_readers(state.newsletter(), issue.list, content=files)
    except UnknownList:
        raise
    except NewsletterError as exc:  # no schema yet, or the database cannot be reached
        detail = str(exc).strip().splitlines()[0]
        return None, DEFAULT_FALLBACK, f"could not ask the store for subscribers' languages: {detail}", ""
    readers = ", ".join(f"{lang} {n}" for lang, n in in_use.items()) or "none yet"
    return tuple(in_use), chain, f"active subscribers by language: {readers}; fallback {' > '.join(chain)}", name


@main.command()
@click.argument("content", nargs=-1, required=True)
@click.option("--lang", "languages", multiple=True, type=click.Choice(LANGUAGES),
              help="Write only this language (repeat for several). A language without a variant "
                   "shows the one its readers would get through the fallback chain.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("preview"),
              show_default=True, help="Folder for the .html, .txt and .eml files.")
@click.option("--subscriber-languages", default=None, metavar="xx,yy",
              help="Languages the list's subscribers read, for the missing-variant check "
                   "(default: ask the store, when there is a database).")
@click.pass_obj
def preview(state: State, content: tuple[str, ...], languages: tuple[str, ...], out_dir: Path,
            subscriber_languages: str | None) -> None:
    """Render content files, lint them, and write each language as a sample reader gets it.

    CONTENT is content files, folders of them, or glob patterns; files with the same slug are
    the languages of one issue. Writes <slug>.<lang>.html, .txt and .eml into --out, prints
    the lint report, and exits with status 1 when lint finds an error (which would block sending),
    or, before writing anything, when the store has no list the content's `list:` names.

    Example: newsletter preview examples/asp23/day-3.*.md --out preview
    """
    config = state.config
    issues = load_issues(content)
    now = datetime.now(timezone.utc)
    errors = 0
    # Every issue's list is asked for before anything is rendered or written: a misspelt
    # `list:` stops the preview with the lists there are.
    audiences = {issue.slug: _audience(state, issue) for issue in issues} if subscriber_languages is None else {}
    for issue in issues:
        rendered = render_issue(config, issue)
        if subscriber_languages is not None:
            in_use = tuple(s.strip() for s in subscriber_languages.split(",") if s.strip())
            chain, note = DEFAULT_FALLBACK, f"subscribers' languages as given: {', '.join(in_use) or 'none'}"
            list_name = ""
        else:
            in_use, chain, note, list_name = audiences[issue.slug]
        report = lint_issue(rendered, subscriber_languages=in_use or (), fallback_chain=chain)
        files = write_preview(config, issue.slug, issue.list, rendered, out_dir, languages=languages or None,
                              fallback_chain=chain, now=now, list_name=list_name)
        click.echo(f"{issue.slug} ({issue.kind.value} for list {issue.list}): "
                   f"variants {', '.join(issue.languages)}")
        click.echo(f"  {note}")
        for f in files:
            shown = "" if f.variant == f.language else f"  (no {f.language} variant: shows {f.variant})"
            click.echo(f"  {f.language}: {f.html}  {f.text}  {f.eml}{shown}")
        for line in report.format().splitlines():
            click.echo(f"  {line}")
        errors += len(report.errors)
    click.echo(f"files written to {out_dir.resolve()}")
    if errors:
        raise click.ClickException(f"{errors} lint error(s): fix them before sending")
