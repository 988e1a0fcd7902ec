"""`newsletter webhooks …`: receivers of outgoing webhooks, their deliveries, and delivering."""

from __future__ import annotations

import time

import click

from ..hooks import delivery
from ..installation import Newsletter
from ..statuses import DeliveryStatus
from . import main, pass_newsletter


@main.group(name="webhooks")
def webhooks_group() -> None:
    """Outgoing webhooks (Standard Webhooks): add, list, remove, deliveries, attempts, deliver, retry.

    Example: newsletter webhooks add civicrm https://crm.example.org/newsletter-hook --event unsubscribe --event bounce
    """


@webhooks_group.command(name="add")
@click.argument("name")
@click.argument("url")
@click.option("--event", "events", multiple=True, type=click.Choice(list(delivery.EVENTS)),
              help="An event it takes (repeat; default: every one).")
@pass_newsletter
def add(newsletter: Newsletter, name: str, url: str, events: tuple[str, ...]) -> None:
    """Add a receiver; prints the secret its deliveries are signed with (whsec_…).

    Example: newsletter webhooks add website https://www.example.org/hooks/newsletter --event subscribe
    """
    endpoint, secret = delivery.add_webhook(newsletter, name, url, events)
    click.echo(secret)
    click.echo(f"webhook {endpoint.name} → {endpoint.url}: {', '.join(endpoint.events)}; give the receiver the "
               "secret above to verify the signatures", err=True)


@webhooks_group.command(name="list")
@pass_newsletter
def list_(newsletter: Newsletter) -> None:
    """Every receiver and the events it takes.

    Example: newsletter webhooks list
    """
    found = delivery.list_webhooks(newsletter)
    if not found:
        click.echo("no webhooks yet")
    for e in found:
        click.echo(f"{e.name:<20} {e.url}  {', '.join(e.events)}")


@webhooks_group.command(name="remove")
@click.argument("name")
@pass_newsletter
def remove(newsletter: Newsletter, name: str) -> None:
    """Remove a receiver and its deliveries.

    Example: newsletter webhooks remove website
    """
    delivery.remove_webhook(newsletter, name)
    click.echo(f"webhook {name} removed")


@webhooks_group.command(name="deliveries")
@click.option("--webhook", "name", default=None, help="Only this receiver's.")
@click.option("--status", type=click.Choice([s.value for s in DeliveryStatus]), default=None, help="Only these.")
@click.option("--limit", default=50, show_default=True)
@pass_newsletter
def deliveries(newsletter: Newsletter, name: str | None, status: str | None, limit: int) -> None:
    """Deliveries, newest first: event, status, attempts, the receiver's last answer.

    Example: newsletter webhooks deliveries --status failed
    """
    found = delivery.deliveries(newsletter, name=name, status=DeliveryStatus(status) if status else None,
                                limit=limit)
    if not found:
        click.echo("no deliveries")
    for d in found:
        answer = f"HTTP {d.last_status_code}" if d.last_status_code else (d.last_error or "")
        when = f"next {d.next_attempt_at:%Y-%m-%d %H:%M:%S}" if d.status is DeliveryStatus.PENDING else ""
        click.echo(f"{d.id:>6} {d.endpoint:<16} {d.event_type:<24} {d.status.value:<9} {d.attempts:>2} attempt(s) "
                   f"{answer[:60]} {when}".rstrip())


@webhooks_group.command(name="attempts")
@click.argument("delivery_id", type=int)
@pass_newsletter
def attempts(newsletter: Newsletter, delivery_id: int) -> None:
    """Every attempt of one delivery.

    Example: newsletter webhooks attempts 42
    """
    for at, code, error, took in delivery.delivery_attempts(newsletter, delivery_id):
        click.echo(f"{at:%Y-%m-%d %H:%M:%S}  {f'HTTP {code}' if code else '—':<8} {took:>6} ms  {error or 'delivered'}")


@webhooks_group.command(name="deliver")
@click.option("--watch", is_flag=True, help="Keep delivering every --interval seconds (`newsletter serve` does it).")
@click.option("--interval", default=5.0, show_default=True)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds a receiver has to answer.")
@pass_newsletter
def deliver(newsletter: Newsletter, watch: bool, interval: float, timeout: float) -> None:
    """Queue new events and deliver what is due (once, or with --watch until Ctrl-C).

    Example: newsletter webhooks deliver --watch
    """
    while True:
        done = delivery.deliver_due(newsletter, timeout=timeout)
        if done.queued or done.delivered or done.retrying or done.failed or not watch:
            click.echo(f"queued {done.queued}, delivered {done.delivered}, to retry {done.retrying}, "
                       f"given up {done.failed}")
        if not watch:
            return
        time.sleep(interval)


@webhooks_group.command(name="retry")
@click.option("--webhook", "name", default=None, help="Only this receiver's.")
@pass_newsletter
def retry(newsletter: Newsletter, name: str | None) -> None:
    """Queue failed deliveries again, due now.

    Example: newsletter webhooks retry --webhook civicrm
    """
    click.echo(f"{delivery.retry_failed(newsletter, name)} deliver(y/ies) queued again")
