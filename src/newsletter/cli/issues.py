"""`newsletter issue …`: the issues written in the workspace, to and from content files."""

from __future__ import annotations

from pathlib import Path

import click

from ..editorial import issues
from ..editorial.versions import IssueView, TranslationState
from ..installation import Newsletter
from . import main, pass_newsletter


@main.group(name="issue")
def issue_group() -> None:
    """Issues written in the workspace: take content files in, write them out, show their state.

    Example: newsletter issue import examples/asp23/day-4.*.md
    """


def _echo_state(view: IssueView) -> None:
    click.echo(f"{view.slug} ({view.kind} for list {view.list_slug}), written in {view.source_language}")
    for state in view.languages:
        version = state.version
        if version is None:
            click.echo(f"  {state.language}: missing")
            continue
        made = f", from {view.source_language} revision {version.based_on_number}" \
            if version.based_on_number is not None else ""
        click.echo(f"  {state.language}: {state.state.value}, revision {version.number}{made}"
                   f"{' by ' + version.author if version.author else ''}")
        if state.state is TranslationState.STALE and state.changed_fields:
            click.echo(f"      the {view.source_language} version changed since: {', '.join(state.changed_fields)}")
    if view.sent_at is not None:
        click.echo(f"  sent {view.sent_at:%Y-%m-%d %H:%M} UTC")


@issue_group.command(name="import")
@click.argument("content", nargs=-1, required=True)
@click.option("--by", "author", default=None, help="Who wrote them (recorded with each revision).")
@pass_newsletter
def import_issue(newsletter: Newsletter, content: tuple[str, ...], author: str | None) -> None:
    """Take an issue's content files in: a new issue, or a new revision of each language that changed.

    CONTENT is content files, folders of them, or glob patterns, all of one issue.

    Example: newsletter issue import examples/asp23/day-4.*.md --by editor@example.org
    """
    _echo_state(issues.import_files(newsletter, content, author=author))


@issue_group.command(name="export")
@click.argument("slug")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for the <slug>.<lang>.md files.")
@pass_newsletter
def export_issue(newsletter: Newsletter, slug: str, out_dir: Path) -> None:
    """Write an issue's newest version of each language as content files (what `send` and `preview` read).

    Example: newsletter issue export asp23-day-4 --out content/
    """
    for path in issues.export_files(newsletter, slug, out_dir):
        click.echo(str(path))


@issue_group.command(name="show")
@click.argument("slug")
@pass_newsletter
def show_issue(newsletter: Newsletter, slug: str) -> None:
    """An issue's languages: which are current, stale (and what changed in the source) or missing.

    Example: newsletter issue show asp23-day-4
    """
    _echo_state(issues.show_issue(newsletter, slug))
