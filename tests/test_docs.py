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
