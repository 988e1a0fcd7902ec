"""The README's tour, run for real, in order, in a fresh folder, against a real SMTP server.

Together with test_readme.py (every README line parses) and test_demo.py (the first command),
this keeps the README true. Commands that run until stopped are covered elsewhere:
`sink` (test_cli), `serve` (test_web_browser), `bounces --watch` (test_bounces).
"""

from __future__ import annotations

import glob
import shlex
from pathlib import Path

from click.testing import CliRunner
from conftest import free_port
from test_readme import readme_commands

from newsletter.cli import main

REPO = Path(__file__).resolve().parents[1]
RUNS_UNTIL_STOPPED = ("newsletter sink", "newsletter serve", "newsletter demo")


def to_args(line: str, dns_port: int) -> list[str]:
    """The command's arguments, with the repository's paths made absolute and globs expanded."""
    args = []
    for word in shlex.split(line)[1:]:
        if word.startswith(("examples/", "subscribers/")):
            matches = sorted(glob.glob(str(REPO / word)))
            assert matches, f"README names {word}, which matches nothing"
            args.extend(matches)
        else:
            args.append(word)
    if args and args[0] == "check":  # never ask the machine's DNS from a test
        args[1:1] = ["--nameserver", f"127.0.0.1:{dns_port}", "--dns-timeout", "0.5"]
    return args


def test_the_tour_runs(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "bounces").mkdir()
    dns_port = free_port()
    ran = []
    for line in readme_commands():
        if line.startswith(RUNS_UNTIL_STOPPED) or "--watch" in line:
            continue
        line = line.replace("/var/mail/bounces", "bounces")
        args = to_args(line, dns_port)
        result = CliRunner().invoke(main, args, input="y\n")
        assert "Traceback" not in result.output, f"{line}\n{result.output}"
        if "--worker" in args:
            # run after the line that started the campaign, which has finished it by now: the
            # worker says there is nothing to join (several live workers: test_send_crash.py)
            assert result.exit_code == 0 or "workers only join a campaign that is sending" in result.output
            continue
        # `check` exits 1 because example.org has no SPF/DKIM/DMARC here; everything else succeeds
        expected = (0, 1) if args[0] == "check" else (0,)
        assert result.exit_code in expected, f"{line} exited {result.exit_code}:\n{result.output}"
        ran.append((args[0], result.output))
    commands = [name for name, _ in ran]
    for needed in ("init", "lists", "import", "preview", "send", "campaigns", "campaign", "bounces", "dkim", "check", "show"):
        assert needed in commands, f"the tour no longer runs `newsletter {needed}`"
    outputs = dict(ran)
    assert "not checked" in outputs["check"]  # DNS was unreachable, and it says so
    # the tour's send reached the subscribers it imported, in their languages
    languages = {str(m["Content-Language"]) for m in smtp_server.messages() if m["List-Id"]}
    assert {"en", "fr", "ar"} <= languages
    assert any(m["Subject"].startswith("[TEST]") for m in smtp_server.to("you@example.org"))
