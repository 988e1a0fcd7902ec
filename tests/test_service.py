"""The service (`newsletter serve`): its parts alone and together, /healthz and /readyz, the
senders carrying campaigns on, JSON-line logs, SIGTERM during a send in a real process, and
the systemd units' command lines as written."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO, free_port
from population import populate
from sqlalchemy import func, select

from newsletter.i18n import translations
from newsletter.installation import Newsletter
from newsletter.routine.carry import SERVICE_STOPPED, campaigns_to_carry_on
from newsletter.sending import actions, campaigns
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.service import Service
from newsletter.statuses import CampaignStatus, OutboxStatus
from newsletter.store import OutboxRow, open_store

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
NEWSLETTER = str(Path(sys.executable).with_name("newsletter"))


def start_campaign(newsletter: Newsletter, files=DAY_3) -> str:
    """A campaign started as a face that leaves it to the service would: sending, ledger written."""
    prepared = prepare_send(newsletter, files)
    with newsletter.store.session() as session:
        campaigns.start_campaign(session, prepared.slug, prepared.plan.list_slug, now=newsletter.clock(),
                                 subject=prepared.subject, source={"files": list(prepared.files)},
                                 languages=prepared.plan.variant_of, default_language="en")
    return prepared.slug


async def running(service: Service) -> asyncio.Task:
    task = asyncio.create_task(service.run(handle_signals=False))
    for _ in range(200):
        if all(p.ready for p in service.parts):
            return task
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    raise AssertionError("the service did not start")


async def stopped(service: Service, task: asyncio.Task) -> None:
    service.stop("the test is over")
    await asyncio.wait_for(task, 30)


async def until(check, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_every_part_together_answers_health_and_readiness(newsletter, smtp_server):
    service = Service(newsletter, port=0, poll=0.1)
    task = await running(service)
    try:
        async with httpx.AsyncClient(base_url=service.http.url) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.text == "ok"
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            body = ready.json()
            assert body["ready"] is True and body["store"] == "ok"
            assert set(body["parts"]) == {"web", "confirmations", "mailbox", "welcome", "housekeeping", "sender", "scheduler", "webhooks"}
            assert body["parts"]["mailbox"] in ("running", "idle: no bounce_mailbox is set")
            assert (await client.get("/subscribe")).status_code == 200
    finally:
        await stopped(service, task)
    assert not any(p.ready for p in service.parts)


async def test_one_part_alone_serves_only_health(newsletter, smtp_server):
    service = Service(newsletter, only=["sender"], port=0, poll=0.1)
    task = await running(service)
    try:
        async with httpx.AsyncClient(base_url=service.http.url) as client:
            assert (await client.get("/subscribe")).status_code == 404
            body = (await client.get("/readyz")).json()
            assert body["ready"] and set(body["parts"]) == {"web", "sender"}  # "web" here: the health server
    finally:
        await stopped(service, task)


async def test_readiness_says_when_the_store_is_behind(config, tmp_path, clock):
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated
    service = Service(Newsletter(config, store, clock=clock), only=["scheduler"], port=0, poll=0.1)
    task = await running(service)
    try:
        async with httpx.AsyncClient(base_url=service.http.url) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "schema" in ready.json()["store"]
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await stopped(service, task)
        store.dispose()


async def test_the_sender_carries_on_a_campaign_left_sending(newsletter, smtp_server):
    populate(newsletter.store, 12, now=newsletter.clock())
    slug = start_campaign(newsletter)
    assert campaigns_to_carry_on(newsletter) == [slug]
    service = Service(newsletter, only=["sender"], port=0, poll=0.1)
    task = await running(service)
    try:
        await until(lambda: actions.detail(newsletter, slug).summary.status is CampaignStatus.FINISHED)
    finally:
        await stopped(service, task)
    assert len(smtp_server.received) == 12 and campaigns_to_carry_on(newsletter) == []


async def test_deferred_rows_are_retried_once_due_and_a_paused_campaign_stays_paused(newsletter, smtp_server,
                                                                                     clock):
    emails = populate(newsletter.store, 6, now=clock())
    smtp_server.fail_rcpt[emails[2]] = ["451 4.3.0 try later"]
    first = await asyncio.to_thread(launch, newsletter, prepare_send(newsletter, DAY_3),
                                    SendOptions(wait_for_deferred=False, concurrency=2))
    assert first.paused and first.counts.deferred == 1
    assert campaigns_to_carry_on(newsletter) == []  # not due yet
    clock.now = first.next_due
    assert campaigns_to_carry_on(newsletter) == [first.slug]
    with newsletter.store.session() as session:
        campaigns.resume_campaign(session, first.slug)
    actions.pause(newsletter, first.slug)  # a person pauses it: the service leaves it alone
    assert campaigns_to_carry_on(newsletter) == []
    with newsletter.store.session() as session:  # as its first pass left it
        campaigns.resume_campaign(session, first.slug)
        campaigns.pause_campaign(session, first.slug, first.reason, retry_at=first.next_due)
    service = Service(newsletter, only=["sender"], port=0, poll=0.1)
    task = await running(service)
    try:
        await until(lambda: actions.detail(newsletter, first.slug).summary.status is CampaignStatus.FINISHED)
    finally:
        await stopped(service, task)
    assert len(smtp_server.to(emails[2])) == 1 and len(smtp_server.received) == 6


async def test_stopping_the_service_mid_send_leaves_the_campaign_to_the_next_start(newsletter, smtp_server):
    populate(newsletter.store, 60, now=newsletter.clock())
    smtp_server.delay = 0.02
    slug = start_campaign(newsletter)
    service = Service(newsletter, only=["sender"], port=0, poll=0.1,
                      options=SendOptions(concurrency=1, batch_size=5))
    task = await running(service)
    await until(lambda: len(smtp_server.received) >= 5)
    await stopped(service, task)
    summary = actions.detail(newsletter, slug).summary
    assert summary.status is CampaignStatus.PAUSED and summary.status_reason == str(SERVICE_STOPPED)
    assert summary.counts.sending == 0 and summary.counts.sent == len(smtp_server.received) < 60
    assert campaigns_to_carry_on(newsletter) == [slug]
    with newsletter.store.session() as session:  # the English reworded: the kept message id still tells
        campaigns.get_campaign(session, slug).status_reason = "the service went away (an older wording)"
    assert campaigns_to_carry_on(newsletter) == [slug]
    with newsletter.store.session() as session:  # the workspace says it in the reader's language
        said = campaigns.status_said(campaigns.get_campaign(session, slug))
    french = translations(REPO / "templates" / "locale", "fr")
    assert said.translated(french.gettext, french.ngettext).startswith("le service s'est arrêté (SIGTERM)")
    smtp_server.delay = 0
    again = Service(newsletter, only=["sender"], port=0, poll=0.1)
    task = await running(again)
    try:
        await until(lambda: actions.detail(newsletter, slug).summary.status is CampaignStatus.FINISHED)
    finally:
        await stopped(again, task)
    recipients = [r.rcpt_tos[0] for r in smtp_server.received]
    assert len(recipients) == 60 and len(set(recipients)) == 60


# ------------------------------------------------------------------ the real process, as systemd runs it

UNITS = REPO / "contrib" / "systemd"


def unit_commands(unit: str, environment: dict[str, str], instance: str = "1") -> tuple[list[list[str]], dict]:
    """The unit's ExecStartPre and ExecStart lines as systemd would run them: `%i` is the
    instance, `${VAR}` comes from its Environment= lines and then the EnvironmentFile
    (`environment` here), and the installed venv's bin/ is this one's."""
    env: dict[str, str] = {}
    commands = []
    for line in (UNITS / unit).read_text().splitlines():
        key, _, value = line.partition("=")
        value = value.replace("%i", instance)
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key in ("ExecStartPre", "ExecStart"):
            commands.append(value)
    env.update(environment)
    expanded = []
    for command in commands:
        command = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], command)
        argv = shlex.split(command)
        assert argv[0] == "/srv/newsletter/venv/bin/newsletter", argv[0]
        expanded.append([NEWSLETTER, *argv[1:]])
    return expanded, {**os.environ, **env}


@pytest.fixture
def installation(tmp_path, smtp_server):
    """A folder like /srv/newsletter: its newsletter.toml (the relay is the recording server)."""
    folder = tmp_path / "srv"
    folder.mkdir()
    (folder / "newsletter.toml").write_text(
        'database_url = "sqlite:///subscribers/newsletter.db"\n'
        'base_url = "https://news.example.org"\n'
        f'smtp_url = "smtp://127.0.0.1:{smtp_server.port}?starttls=off&timeout=10"\n')
    return folder


def start_unit(unit: str, folder: Path, port: int) -> subprocess.Popen:
    commands, env = unit_commands(unit, {"NEWSLETTER_CONFIG": str(folder / "newsletter.toml"), "PORT": str(port)})
    for pre in commands[:-1]:
        subprocess.run(pre, cwd=folder, env=env, check=True, capture_output=True, text=True)
    return subprocess.Popen(commands[-1], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_ready(process: subprocess.Popen, port: int) -> dict:
    for _ in range(600):
        assert process.poll() is None, process.communicate()
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("not ready")


def terminate(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=90)  # the unit's TimeoutStopSec
    assert process.returncode == 0, err
    return out, err


def test_the_units_command_line_runs_the_whole_service_and_logs_json_lines(installation, smtp_server):
    port = free_port()
    process = start_unit("newsletter.service", installation, port)
    try:
        ready = wait_ready(process, port)
        assert set(ready["parts"]) == {"web", "confirmations", "mailbox", "welcome", "housekeeping", "sender", "scheduler", "webhooks"}
        assert httpx.get(f"http://127.0.0.1:{port}/subscribe").status_code == 200
    finally:
        _, err = terminate(process)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"] == "stopping: SIGTERM" for line in lines)
    assert any(line.get("part") == "sender" and line["message"] == "sender: stopped" for line in lines)
    assert lines[-1]["message"] == "service stopped"


def test_sigterm_during_a_send_loses_nothing_and_the_next_start_finishes_it(installation, smtp_server):
    port = free_port()
    commands, env = unit_commands("newsletter.service", {"NEWSLETTER_CONFIG": str(installation / "newsletter.toml")})
    subprocess.run(commands[0], cwd=installation, env=env, check=True, capture_output=True)  # newsletter init
    from newsletter.config import load_config

    newsletter = Newsletter(load_config(installation / "newsletter.toml"))
    try:
        populate(newsletter.store, 300, now=newsletter.clock())
        slug = start_campaign(newsletter)
        smtp_server.delay = 0.05
        process = start_unit("newsletter-sender@.service", installation, port)
        for _ in range(1200):
            if len(smtp_server.received) >= 20:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        terminate(process)
        with newsletter.store.session() as session:
            in_flight = session.scalar(select(func.count()).where(OutboxRow.status == OutboxStatus.SENDING))
        summary = actions.detail(newsletter, slug).summary
        assert summary.status is CampaignStatus.PAUSED and summary.status_reason == str(SERVICE_STOPPED)
        assert in_flight == 0 and summary.counts.sent == len(smtp_server.received) < 300
        assert summary.counts.queued == 300 - summary.counts.sent
        smtp_server.delay = 0
        process = start_unit("newsletter-sender@.service", installation, port)
        try:
            for _ in range(1200):
                if actions.detail(newsletter, slug).summary.status is CampaignStatus.FINISHED:
                    break
                assert process.poll() is None, process.communicate()
                time.sleep(0.05)
        finally:
            terminate(process)
        recipients = [r.rcpt_tos[0] for r in smtp_server.received]
        assert len(recipients) == 300 and len(set(recipients)) == 300
        assert actions.detail(newsletter, slug).summary.counts.sent == 300
    finally:
        newsletter.store.dispose()


def test_serve_names_the_parts_there_are(installation):
    from click.testing import CliRunner

    from newsletter.cli import main

    result = CliRunner().invoke(main, ["--config", str(installation / "newsletter.toml"), "serve", "--only",
                                       "sender,postman"])
    assert result.exit_code == 2 and "postman: choose from web, confirmations, mailbox, welcome, housekeeping, sender, scheduler, webhooks" in \
        result.output
