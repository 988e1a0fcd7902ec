"""The `newsletter` command line: thin click commands over the library.

Each command parses its arguments, makes library calls and prints. Library errors become
click errors here, in one place (`NewsletterGroup.invoke`), so no command prints a traceback
for a condition we foresaw. The library never imports this package.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from ..config import Config, load_config
from ..errors import NewsletterError
from ..service import Newsletter

__all__ = ["main", "pass_newsletter", "pass_config"]


#: Where each command lives. A command's module (and the libraries behind it) is imported
#: only when that command runs, so `newsletter lists` does not load the web app, premailer or
#: DNS. Every module adds its commands to `main` when imported; tests check this map is complete.
COMMAND_MODULES = {
    "init": "setup", "sink": "setup",
    "lists": "lists",
    "subscribe": "people", "unsubscribe": "people", "subscribers": "people", "show": "people",
    "erase": "people", "export": "people",
    "import": "importing",
    "preview": "compose",
    "send": "sending", "campaigns": "sending", "campaign": "sending",
    "serve": "web",
    "bounces": "bounces", "dkim": "bounces", "check": "bounces",
    "demo": "demo",
}


class NewsletterGroup(click.Group):
    """Loads commands on first use; translates library errors into `Error: …` lines and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            importlib.import_module(f"{__name__}.{COMMAND_MODULES[name]}")
        return self.commands.get(name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(
                f"the database failed: {detail}. Check database_url and that the server is running."
            ) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)


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
            self._newsletter.store.check_schema()
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
