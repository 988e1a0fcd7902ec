"""`newsletter serve`: the visitor pages (sign-up, confirm, unsubscribe, preferences) over uvicorn."""

from __future__ import annotations

import gc

import click

from ..installation import Newsletter
from . import main, pass_newsletter


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep loopback behind a reverse proxy).")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--root-path", default="", help="URL prefix when mounted under a path by the reverse proxy.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="How much to log.")
@pass_newsletter
def serve(newsletter: Newsletter, host: str, port: int, root_path: str, log_level: str) -> None:
    """Serve the visitor pages: sign-up form, confirm, unsubscribe (with one-click), preferences.

    Links in mail are built on base_url; put the server behind a reverse proxy that terminates
    TLS and list the proxy in trusted_proxies so the consent log gets the visitor's IP.

    Example: newsletter serve --host 127.0.0.1 --port 8000
    """
    import uvicorn

    from ..web import create_app

    newsletter.config.secret()  # fail now, not on the first visitor, if there is no key
    click.echo(f"Serving the visitor pages on http://{host}:{port}/subscribe (links use {newsletter.config.base_url})")
    app = create_app(newsletter)
    # What is built by now (modules, the app, its templates) lives as long as the process: keep it
    # out of the collector's full passes, which stalled sign-ups for tens of milliseconds (p99 at
    # 300 sign-ups/s: 112-124 ms without, 69-90 ms with; docs/benchmarks.md "Web").
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, root_path=root_path, log_level=log_level,
                proxy_headers=False, server_header=False, access_log=log_level == "debug")
