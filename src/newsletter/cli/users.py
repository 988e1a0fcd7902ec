"""`newsletter users …`: workspace accounts from the command line (the first owner, above all)."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..staff import accounts
from ..staff.audit import Actor
from ..staff.roles import Role
from . import main, pass_newsletter


@main.group(name="users", invoke_without_command=True)
@click.pass_context
def users_group(ctx: click.Context) -> None:
    """Workspace accounts: add the first owner, list them, revoke one. With no subcommand, lists them.

    `reset` prints a password link for someone locked out (the last owner included).

    Example: newsletter users add coordinator@example.org --role owner
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_users)


@users_group.command(name="add")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True,
              help="owner (accounts, settings, everything), sender, editor, translator or viewer.")
@click.option("--name", default="", help="The person's name, as the workspace shows it.")
@click.option("--languages", default="", help="For a translator: the languages they edit (comma-separated).")
@pass_newsletter
def add_user(newsletter: Newsletter, email: str, role: str, name: str, languages: str) -> None:
    """Add an account and print its one-time link to choose a password (valid 7 days).

    Nothing is mailed: give the link to the person yourself. Owners invite the others from the
    workspace's Accounts page, which mails the link.

    Example: newsletter users add coordinator@example.org --role owner --name "Amina Diallo"
    """
    invitation = accounts.add_member(newsletter, email, Role(role), name=name,
                                     languages=[x.strip() for x in languages.split(",") if x.strip()])
    click.echo(f"added {invitation.member.email} ({invitation.member.role.value}); to choose a password, open "
               "this link (it works once, for 7 days):")
    click.echo(f"  {invitation.link}")


@users_group.command(name="list")
@pass_newsletter
def list_users(newsletter: Newsletter) -> None:
    """Every workspace account with its role, status and second factor.

    Example: newsletter users list
    """
    found = accounts.members(newsletter)
    if not found:
        click.echo("no accounts yet; add the first owner with: newsletter users add EMAIL --role owner")
        return
    click.echo(f"{'email':<36} {'role':<11} {'status':<8} {'2fa':<4} name")
    for m in found:
        role = m.role.value + (f" ({','.join(m.languages)})" if m.languages else "")
        click.echo(f"{m.email:<36} {role:<11} {m.status.value:<8} {'on' if m.totp_enabled else 'off':<4} {m.name}")


@users_group.command(name="reset")
@click.argument("email")
@click.option("--remove-totp", is_flag=True, help="Also remove the account's second factor (a lost phone).")
@pass_newsletter
def reset_user(newsletter: Newsletter, email: str, remove_totp: bool) -> None:
    """Print a one-time link to choose a new password (valid one hour), for someone locked out.

    Nothing is mailed; reset links mailed before stop working.

    Example: newsletter users reset coordinator@example.org --remove-totp
    """
    link = accounts.recovery_link(newsletter, email, remove_totp=remove_totp)
    done = " and removed the second factor" if remove_totp else ""
    click.echo(f"made a reset link for {email}{done}; it works once, for one hour:")
    click.echo(f"  {link}")


@users_group.command(name="revoke")
@click.argument("email")
@pass_newsletter
def revoke_user(newsletter: Newsletter, email: str) -> None:
    """Revoke an account for good: its sessions end at once and its links stop working.

    Example: newsletter users revoke former.colleague@example.org
    """
    member = accounts.revoke(newsletter, Actor(None), email)
    click.echo(f"revoked {member.email}; the audit trail keeps what they did")
