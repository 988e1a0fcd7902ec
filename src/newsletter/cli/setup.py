"""`newsletter init` and `newsletter sink`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..config import CONFIG_FILE, write_default_config
from ..transport.sink import CaughtMessage, Sink
from . import State, main


@main.command()
@click.pass_obj
def init(state: State) -> None:
    """Write newsletter.toml and a secret key if missing, then create or upgrade the database.

    Safe to run again: existing files are kept and the schema is only ever moved forward.

    Example: newsletter init
    """
    folder = Path(state.config_path).parent if state.config_path else Path.cwd()
    if state.config_path and Path(state.config_path).name != CONFIG_FILE and not Path(state.config_path).exists():
        raise click.ClickException(f"{state.config_path} does not exist; run `newsletter init` without --config to write {CONFIG_FILE}")
    for path in write_default_config(folder):
        click.echo(f"wrote {path}" + (" (mode 0600; keep it secret)" if path.suffix == ".key" else ""))
    url, before, after = state.newsletter(check_schema=False).upgrade_schema()
    if before == after:
        click.echo(f"database {url} is up to date (revision {after})")
    else:
        click.echo(f"database {url}: {'created' if before is None else 'upgraded from ' + before} at revision {after}")


@main.command()
@click.option("--port", type=int, default=None, help="Port to listen on (default: sink_port, 8025).")
@click.option("--maildir", type=click.Path(file_okay=False), default=None,
              help="Where to store caught mail (default: sink_maildir, ./mail).")
@click.pass_obj
def sink(state: State, port: int | None, maildir: str | None) -> None:
    """Run a local SMTP catcher on 127.0.0.1 that keeps every message in a Maildir.

    Prints one line per message. Stop it with Ctrl-C.

    Example: newsletter sink --port 8025 --maildir mail
    """
    config = state.config
    folder = Path(maildir or config.sink_maildir)

    def report(msg: CaughtMessage) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')}  {msg.sender} -> {', '.join(msg.recipients)}  "
                   f"{msg.subject!r}  {msg.size} bytes  [{msg.key}]")

    try:
        catcher = Sink(folder, port=port or config.sink_port, on_message=report).start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port or config.sink_port}: {exc.strerror or exc}") from None
    click.echo(f"catching mail on smtp://127.0.0.1:{catcher.port} into {folder}/ (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        catcher.stop()
        click.echo("stopped")
