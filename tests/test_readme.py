"""Every command shown in the README exists and parses, so the README cannot drift from the code.

Commands that act (the demo, init, subscribe …) are run for real by other tests; this one
checks that each README line names real commands and options with valid values.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from newsletter.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", README.read_text(), flags=re.S)
    found = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            for part in re.split(r"&&|\|", line):
                part = part.strip()
                part = re.sub(r"^(\.venv/bin/)", "", part)
                if part.startswith("newsletter ") or part == "newsletter":
                    found.append(part)
    return found


def parse(args: list[str]) -> None:
    """Parse like click would, down to the leaf command, without running anything."""
    command: click.Command = main
    name, parent = "newsletter", None
    while True:
        ctx = command.make_context(name, list(args), parent=parent)
        if not isinstance(command, click.Group):
            return
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            return
        name, command, args = command.resolve_command(ctx, rest)
        parent = ctx


def test_readme_shows_commands():
    assert len(readme_commands()) >= 8


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_parses(line):
    parse(shlex.split(line)[1:])
