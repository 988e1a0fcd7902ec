"""Commands about deliverability: `newsletter bounces`, `newsletter dkim keygen`, `newsletter check`."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config
from ..dkim import generate_key, zone_record
from . import main, pass_config


@main.group()
def dkim() -> None:
    """DKIM keys for signing outgoing mail.

    Example: newsletter dkim keygen --selector news2026 --domain example.org
    """


@dkim.command()
@click.option("--selector", required=True, help="The selector: the key's name in DNS (e.g. news2026).")
@click.option("--domain", default=None, help="The signing domain (default: dkim_domain, else from_address's domain).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="dkim", show_default=True,
              help="Folder for SELECTOR.private (mode 0600) and SELECTOR.public.")
@pass_config
def keygen(config: Config, selector: str, domain: str | None, out: str) -> None:
    """Write an RSA 2048 key pair and print the DNS TXT record to publish.

    Then set dkim_selector, dkim_domain and dkim_key_file in newsletter.toml.

    Example: newsletter dkim keygen --selector news2026 --domain example.org --out dkim
    """
    domain = domain or config.dkim_domain or config.from_address.rpartition("@")[2]
    key = generate_key(selector, domain, Path(out))
    click.echo(f"wrote {key.private_key_path} (mode 0600; keep it secret) and {key.public_key_path}")
    click.echo("Publish this TXT record in DNS:")
    click.echo(zone_record(key.dns_name, key.dns_value))
    click.echo("Then add to newsletter.toml:")
    click.echo(f'  dkim_selector = "{selector}"\n  dkim_domain = "{domain}"\n  dkim_key_file = "{key.private_key_path}"')
