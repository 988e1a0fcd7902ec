"""DKIM: a generated key signs; the printed DNS record verifies it; an altered header fails."""

from __future__ import annotations

import re
import stat
from email.message import EmailMessage
from pathlib import Path

import dkim as dkimpy
import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import Config
from newsletter.errors import DkimError
from newsletter.mail.dkim import SIGNED_HEADERS, generate_key, sign, signer_from_config


def _message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Coalition for the ICC <news@example.org>"
    msg["To"] = "Ana Ruiz <ana@example.net>"
    msg["Subject"] = "ASP 23 — Day 3: the budget debate opens"
    msg["Date"] = "Mon, 23 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = "<asp23-day-3.ab12@example.org>"
    msg["List-Id"] = "ASP daily summaries <asp-daily.example.org>"
    msg["List-Unsubscribe"] = "<https://news.example.org/u/TOKEN>, <mailto:news@example.org?subject=unsubscribe>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Day 3 of the Assembly of States Parties opened with the budget debate.\n")
    return msg.as_bytes()


def _keygen(tmp_path: Path) -> tuple[str, Path]:
    """Run `newsletter dkim keygen` and return (the printed zone line, the key folder)."""
    toml = tmp_path / "newsletter.toml"
    toml.write_text('from_address = "news@example.org"\nsecret_key = "test-secret-key-0123456789abcdef"\n')
    out = tmp_path / "dkim"
    result = CliRunner().invoke(main, ["--config", str(toml), "dkim", "keygen", "--selector", "news2026",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "IN TXT" in line)
    return line, out


def _dnsfunc_from(zone_line: str):
    name = zone_line.split()[0]
    value = "".join(re.findall(r'"([^"]*)"', zone_line)).encode()

    def dnsfunc(qname, timeout=5):  # dkimpy passes bytes names ending with a dot
        wanted = qname.decode() if isinstance(qname, bytes) else qname
        return value if wanted.rstrip(".") == name.rstrip(".") else None

    return dnsfunc


def test_keygen_signs_and_printed_record_verifies(tmp_path: Path) -> None:
    line, out = _keygen(tmp_path)
    assert line.startswith("news2026._domainkey.example.org. IN TXT")
    private = out / "news2026.private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    signed = sign(_message(), "news2026", "example.org", private.read_bytes())
    dnsfunc = _dnsfunc_from(line)
    assert dkimpy.verify(signed, dnsfunc=dnsfunc)
    header = signed.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode()
    h = re.search(r"\bh=([^;]+)", header.replace("\r\n", "").replace("\n", "")).group(1)
    signed_names = {n.strip().lower() for n in h.replace(" ", "").replace("\t", "").split(":")}
    assert {n.lower() for n in SIGNED_HEADERS} <= signed_names


def test_altered_list_unsubscribe_fails(tmp_path: Path) -> None:
    line, out = _keygen(tmp_path)
    signed = sign(_message(), "news2026", "example.org", (out / "news2026.private").read_bytes())
    forged = signed.replace(b"https://news.example.org/u/TOKEN", b"https://evil.example.com/u/TOKEN")
    assert forged != signed
    assert not dkimpy.verify(forged, dnsfunc=_dnsfunc_from(line))
    added = signed.replace(b"List-Unsubscribe-Post:", b"List-Unsubscribe: <https://evil.example.com/>\r\nList-Unsubscribe-Post:", 1)
    assert not dkimpy.verify(added, dnsfunc=_dnsfunc_from(line))


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    generate_key("s1", "example.org", tmp_path)
    with pytest.raises(DkimError, match="exists already"):
        generate_key("s1", "example.org", tmp_path)
    with pytest.raises(DkimError):
        generate_key("bad selector", "example.org", tmp_path)


def test_signer_from_config(tmp_path: Path) -> None:
    assert signer_from_config(Config()) is None
    key = generate_key("s2", "example.org", tmp_path)
    signer = signer_from_config(Config(dkim_selector="s2", dkim_key_file=str(key.private_key_path)))
    signed = signer(_message())
    assert signed.startswith(b"DKIM-Signature:")
    assert b"d=example.org" in signed
    record = key.dns_value.encode()
    assert dkimpy.verify(signed, dnsfunc=lambda name, timeout=5: record)
    with pytest.raises(DkimError, match="cannot read"):
        signer_from_config(Config(dkim_selector="s2", dkim_key_file=str(tmp_path / "missing.private")))
    with pytest.raises(DkimError, match="dkim_key_file"):
        signer_from_config(Config(dkim_selector="s2"))
