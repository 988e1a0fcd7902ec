"""The documentation cannot drift from the code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from newsletter.config import DEFAULT_TOML, Config

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_in_the_configuration_reference():
    reference = (DOCS / "configuration.md").read_text()
    for f in dataclasses.fields(Config):
        if f.name == "source":
            continue
        assert f"| `{f.name}` | `NEWSLETTER_{f.name.upper()}` |" in reference, f"{f.name} is not documented"


def test_the_written_config_mentions_every_everyday_setting():
    for key in ("database_url", "base_url", "smtp_url", "from_address", "postal_address", "secret_key_file"):
        assert f"{key} =" in DEFAULT_TOML


def _commands(group, prefix=()):
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


def test_every_command_is_shown_in_the_docs():
    """Each command and subcommand appears as `newsletter <command …>` in docs/ or a README."""
    import importlib
    import re

    from newsletter.cli import COMMAND_MODULES, main

    for module, _ in COMMAND_MODULES.values():
        importlib.import_module(f"newsletter.cli.{module}")
    root = DOCS.parent
    text = "\n".join(p.read_text(encoding="utf-8")
                     for p in [*DOCS.glob("*.md"), root / "README.md", root / "subscribers" / "README.md"])
    missing = [" ".join(path) for path, _ in _commands(main)
               if not re.search(rf"newsletter {re.escape(' '.join(path))}\b", text)]
    assert missing == [], f"not in the docs: {missing}"
