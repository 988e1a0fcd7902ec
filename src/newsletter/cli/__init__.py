"""The `newsletter` command line: thin click commands over the library.

Each command parses its arguments, makes one library call and prints what comes back. Library
errors become click errors here, in one place (`NewsletterGroup.invoke`, worded by `explain`),
so no command prints a traceback for a condition we foresaw; the hints that name a command to
run are added here, never in the library. The library never imports this package.

Every value read from the store (or from a bounce, a file, a visitor) is printed through
`shown`: a terminal never obeys what a visitor typed (escape sequences, a forged line, a
right-to-left override); it shows it as escapes. Error messages go through it too.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import click

from ..addresses import escape_controls
from ..config import Config, load_config
from ..errors import (
    InvalidField,
    ListArchived,
    MissingConfigFile,
    MissingSecretKey,
    NewsletterError,
    NotSuppressed,
    SchemaOutOfDate,
    SegmentError,
    StoreError,
    StoreNotEmpty,
    UnknownCampaign,
    UnknownDraft,
    UnknownList,
    UnknownSegment,
    UnknownStaffMember,
    StaffMemberExists,
)
from ..installation import Newsletter, store_failure

__all__ = ["main", "pass_newsletter", "pass_config", "explain", "shown"]


def shown(value: object, *, json: bool = False) -> str:
    """A stored value as a terminal should print it: controls, bidi overrides and backslashes
    as escapes (`addresses.escape_controls`; `json=True` for JSON text, which stays valid JSON);
    None is "". Every printer of stored values uses it."""
    return escape_controls(value, json=json)


def _shown_lines(text: str) -> str:
    """A message of several lines (a caret under a column, say), each line escaped as `shown`."""
    return "\n".join(shown(line) for line in text.split("\n"))


def explain(error: NewsletterError) -> str:
    """The error's message, with what to run about it when a command can help."""
    message = str(error)
    if isinstance(error, SchemaOutOfDate):
        return f"{message}. Run `newsletter init` to create or upgrade it."
    if isinstance(error, MissingSecretKey):
        return f"{message}. Run `newsletter init` to generate one."
    if isinstance(error, MissingConfigFile) and not error.named:
        return f"{message}. Run `newsletter init` here to write one and create the database, or name one with --config."
    if isinstance(error, MissingConfigFile):
        return f"{message} (run `newsletter init` to write one)"
    if isinstance(error, UnknownList) and not isinstance(error, ListArchived):
        return _unknown_list(error)
    if isinstance(error, UnknownList):
        return f"{message}; `newsletter lists` shows the lists there are"
    if isinstance(error, UnknownSegment):
        return f"{message}; `newsletter segments list` shows the segments there are"
    if isinstance(error, SegmentError) and error.expression and len(error.expression) <= 200:
        return f"{message}\n  {error.expression}\n  {' ' * (error.column - 1)}^"
    if isinstance(error, UnknownCampaign):
        return f"{message}; `newsletter campaigns` lists them"
    if isinstance(error, UnknownStaffMember):
        return f"{message}; `newsletter users list` shows the accounts there are"
    if isinstance(error, StaffMemberExists):
        return f"{message}; `newsletter users list` shows it (a revoked account stays revoked: use another address)"
    if isinstance(error, UnknownDraft):
        return f"{message}; `newsletter issue import FILES` takes content files in"
    if isinstance(error, InvalidField) and error.field == "consent note":
        return f'{message} (e.g. --consent-note "signed up on paper at ASP 23, forms kept in Geneva")'
    if isinstance(error, NotSuppressed):
        return f"{message}; `newsletter suppressions list` shows the suppressions"
    if isinstance(error, StoreNotEmpty):
        if error.undeletable:
            return f"{message}. Restore into a store fresh from `newsletter init`."
        return f"{message}; restore into a store fresh from `newsletter init`, or add --replace to delete what it holds"
    if isinstance(error, StoreError) and error.detail is not None:
        return f"{message}. Check database_url and that the server is running."
    return message


def _names(values: tuple[str, ...], most: int) -> str:
    shown_values = ", ".join(values[:most])
    return shown_values + (f" and {len(values) - most} more" if len(values) > most else "")


def _unknown_list(error: UnknownList) -> str:
    """A list that is not there: the lists that are, the nearest one, and what to do; said of the
    content's `list:` when the content named it."""
    if error.known is None:  # the raiser did not ask which lists there are
        known = "`newsletter lists` shows the lists there are"
    else:
        known = f"the lists there are: {_names(error.known, 20)}" if error.known else "there are no lists yet"
    guess = f"; did you mean {error.suggestion!r}?" if error.suggestion else ""
    create = f"`newsletter lists create {error.slug} NAME`"
    if error.content:
        return (f"{error}, which `list:` names in {_names(error.content, 2)}; {known}{guess or '.'} "
                f"Correct `list:` in the front matter, or create the list with {create}.")
    if error.known is None:
        return f"{error}; {known}"
    if not error.known:
        return f"{error}; {known}: create one with {create}"
    return f"{error}; `newsletter lists` shows the lists there are ({_names(error.known, 20)}){guess}"


#: Where each command lives, and its one-line summary. A command's module (and the libraries
#: behind it) is imported only when that command runs, so `newsletter lists` does not load the
#: web app, premailer or DNS, and `newsletter --help` loads none of them. Every module adds its
#: commands to `main` when imported; tests hold this map to the commands and their own help.
COMMAND_MODULES = {
    "init": ("setup", "Write newsletter.toml and a secret key if missing, then create or upgrade the database."),
    "sink": ("setup", "Run a local SMTP catcher on 127.0.0.1 that keeps every message in a Maildir."),
    "lists": ("lists", "Mailing lists."),
    "subscribe": ("people", "Sign someone up; they get a confirmation mail and are pending until they confirm."),
    "unsubscribe": ("people", "Unsubscribe an address from one list or from all, at once."),
    "subscribers": ("people", "List subscriptions, filtered by list and status."),
    "show": ("people", "A person's data, subscriptions and consent log, bounces, and the campaigns mailed to them."),
    "erase": ("people", "Delete a person's data and consent log; keep a hash so they are never mailed or re-imported."),
    "export": ("people", "Export subscriptions as CSV (email,name,language,list,status and each attribute), or one "
               "person as JSON."),
    "segments": ("segments", "Segments: saved filters over lists, languages and attributes (create, list, show, "
                 "delete)."),
    "webhooks": ("webhooks", "Outgoing webhooks (Standard Webhooks): add, list, remove, deliveries, attempts, deliver, "
                 "retry."),
    "api-tokens": ("api_tokens", "REST API tokens: create (shown once), list, revoke."),
    "attributes": ("people", "Show a person's attributes, or set them (NAME= with no value removes one)."),
    "backup": ("moves", "Write everything the store holds to one archive (to move the installation, or keep it)."),
    "restore": ("moves", "Restore an archive written by `newsletter backup` into this installation's store."),
    "suppressions": ("suppressions", "Addresses never mailed or imported again: list them, lift one, import a list."),
    "import": ("importing", "Import people from a CSV file with a header (email, and optionally name, language, lists)."),
    "preview": ("compose", "Render content files, lint them, and write each language as a sample reader gets it."),
    "send": ("sending", "Send an issue to every confirmed subscriber of a list (running it again resumes it)."),
    "campaigns": ("sending", "Every campaign with its counts (queued, sending, sent, deferred, failed, skipped)."),
    "campaign": ("sending", "One campaign: show, pause, resume, cancel, report, reach, retry."),
    "issue": ("issues", "Issues written in the workspace: take content files in, write them out, show their state."),
    "housekeeping": ("housekeeping", "Remind and expire pending sign-ups; blank old IPs and user agents in the consent log."),
    "sessions": ("sessions", "Session series: each session's days (\"Day N of M\") and whether they went out."),
    "schedule": ("schedule", "Schedule an issue for a time in a named zone; list, show, cancel, or say go for a held one."),
    "serve": ("web", "Run the service: visitor pages, senders, scheduler, confirmations, bounces, welcomes."),
    "bounces": ("bounces", "Read bounce, complaint and unsubscribe mail and apply the rules; or report bounces per "
                "campaign."),
    "dkim": ("bounces", "DKIM keys for signing outgoing mail."),
    "check": ("bounces", "Pre-flight report: SPF, DKIM and DMARC, the one-click endpoint, the relay, lint."),
    "users": ("users", "Workspace accounts: add the first owner, list them, revoke one."),
    "demo": ("demo", "Sign people up, confirm them, send a daily summary and unsubscribe one, all on loopback."),
}


def _shown_lines(message: str) -> str:
    """An error message `shown`, line by line: the lines it means to print stay lines."""
    return "\n".join(shown(line) for line in message.split("\n"))


class NewsletterGroup(click.Group):
    """Loads commands on first use; translates library errors into `Error: …` lines and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            importlib.import_module(f"{__name__}.{COMMAND_MODULES[name][0]}")
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, from COMMAND_MODULES' summaries for commands not loaded."""
        commands = [(name, self.commands.get(name) or click.Command(name, help=COMMAND_MODULES[name][1]))
                    for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            raise click.ClickException(_shown_lines(explain(exc))) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            failure = store_failure(exc)
            if failure is None:
                raise
            raise click.ClickException(_shown_lines(explain(failure))) from None


class State:
    """What the root command knows: where the configuration comes from."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._config: Config | None = None
        self._newsletter: Newsletter | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def newsletter(self, *, check_schema: bool = True) -> Newsletter:
        if self._newsletter is None:
            self._newsletter = Newsletter(self.config)
        if check_schema:
            self._newsletter.check_schema()
        return self._newsletter


def pass_newsletter(func: Callable) -> Callable:
    """Give the command a `Newsletter` whose database schema is up to date."""

    @click.pass_obj
    @functools.wraps(func)
    def wrapper(state: State, *args: Any, **kwargs: Any) -> Any:
        return func(state.newsletter(), *args, **kwargs)

    return wrapper


def pass_config(func: Callable) -> Callable:
    """Give the command the loaded `Config`."""

    @click.pass_obj
    @functools.wraps(func)
    def wrapper(state: State, *args: Any, **kwargs: Any) -> Any:
        return func(state.config, *args, **kwargs)

    return wrapper


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="NEWSLETTER_CONFIG",
              help="The configuration file (default: ./newsletter.toml).")
@click.version_option(package_name="newsletter")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """A mailing-list manager: double opt-in sign-up, multilingual issues, batched sending.

    Example: newsletter init && newsletter lists create asp-daily "ASP daily summaries"
    """
    ctx.obj = State(config_path)
