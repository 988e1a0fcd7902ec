"""`newsletter api-tokens …`: tokens of the REST API, with scopes and a rate limit each."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..staff import api_tokens
from . import main, pass_newsletter


@main.group(name="api-tokens")
def tokens_group() -> None:
    """REST API tokens: create (shown once), list, revoke.

    Example: newsletter api-tokens create civicrm-sync --scope read --scope subscribers --rate 120
    """


@tokens_group.command(name="create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(api_tokens.SCOPES),
              help="What the token may do (repeat for several).")
@click.option("--rate", default=60, show_default=True, help="Requests a minute at most (0: no limit).")
@pass_newsletter
def create(newsletter: Newsletter, name: str, scopes: tuple[str, ...], rate: int) -> None:
    """Make a token and print it; it is shown this once (only its hash is kept).

    Example: newsletter api-tokens create website --scope subscribers --rate 30
    """
    token = api_tokens.create_token(newsletter, name, scopes, per_minute=rate)
    click.echo(token)
    click.echo(f"token {name}: {', '.join(sorted(set(scopes)))}, {rate or 'no limit'} a minute; keep it secret, "
               "it is not shown again", err=True)


@tokens_group.command(name="list")
@pass_newsletter
def list_(newsletter: Newsletter) -> None:
    """Every token: name, first characters, scopes, rate, last use.

    Example: newsletter api-tokens list
    """
    found = api_tokens.list_tokens(newsletter)
    if not found:
        click.echo("no API tokens yet")
    for t in found:
        used = f"used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else used
        click.echo(f"{t.name:<24} {t.prefix}…  {','.join(t.scopes):<26} {t.per_minute:>5}/min  {state}")


@tokens_group.command(name="revoke")
@click.argument("name")
@pass_newsletter
def revoke(newsletter: Newsletter, name: str) -> None:
    """Revoke a token at once.

    Example: newsletter api-tokens revoke website
    """
    changed = api_tokens.revoke_token(newsletter, name)
    click.echo(f"token {name} revoked" if changed else f"token {name} was revoked already")
