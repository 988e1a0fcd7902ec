"""POST /api/v1/campaigns/{slug}/send answers once the campaign is in the store: a GET of it
right after the 202 finds it, however late the send's thread gets to run (#14).

The sends here are real (`BackgroundSends` over aiosmtpd), their thread held at its start until
the test lets it go: the answer must not depend on when that thread runs.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import pytest
from population import populate
from test_api import DAY_3, Api

from newsletter.api import api_routes
from newsletter.editorial.background import BackgroundSends
from newsletter.installation import Newsletter
from newsletter.people import lists
from newsletter.sending.options import SendOptions
from newsletter.staff import api_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient


@dataclass
class HeldSends(BackgroundSends):
    """BackgroundSends whose threads wait for `go` before they do anything."""

    go: threading.Event = field(default_factory=threading.Event)

    def _start(self, slug, run, begin=None):
        def held():
            assert self.go.wait(60), "the test never let the send go"
            return run()

        super()._start(slug, held, begin)


@pytest.fixture
def newsletter(config, store, clock, tmp_path):
    n = Newsletter(config.with_changes(issues_dir=str(tmp_path / "issues")), store, clock=clock)
    with n.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
    return n


@pytest.fixture
def sends(newsletter):
    held = HeldSends(newsletter, options=SendOptions(concurrency=2, idle_poll=3600.0))
    yield held
    held.go.set()


@pytest.fixture
def api(newsletter, sends):
    app = Starlette(routes=[Mount("/api/v1", routes=api_routes(newsletter, sends=sends))])
    with TestClient(app) as client:
        yield Api(client, client.get("/api/v1/openapi.json").json())


@pytest.fixture
def token(newsletter):
    return api_tokens.create_token(newsletter, "t-send", ["send", "read"], per_minute=0)


def test_the_campaign_is_there_when_the_send_answers(api, newsletter, sends, token, smtp_server):
    populate(newsletter.store, 4, now=newsletter.clock())
    api("POST", "/campaigns", token, status=201, json={"content": DAY_3})
    started = api("POST", "/campaigns/asp23-day-3/send", token, status=202, json={})
    assert started["status"] == "sending" and started["total"] == 4
    # The send's thread has not run a line yet: the campaign and its ledger are there all the same.
    assert sends.running("asp23-day-3") and not sends.results
    shown = api("GET", "/campaigns/asp23-day-3", token, status=200)
    assert shown["status"] == "sending" and shown["counts"]["queued"] == 4 and shown["counts"]["sent"] == 0
    assert "asp23-day-3" in [c["slug"] for c in api("GET", "/campaigns", token, status=200)["campaigns"]]
    assert smtp_server.received == []
    sends.go.set()
    assert sends.wait("asp23-day-3", timeout=60).counts.sent == 4
    assert len(smtp_server.received) == 4
    assert api("GET", "/campaigns/asp23-day-3", token, status=200)["status"] == "finished"


def test_a_send_to_nobody_is_refused_in_the_answer_and_starts_nothing(api, newsletter, sends, token):
    """Before, the 202 came first and the refusal went to the thread's log; now the answer says it."""
    api("POST", "/campaigns", token, status=201, json={"content": DAY_3})
    body = api("POST", "/campaigns/asp23-day-3/send", token, status=409, json={})
    assert body["error"]["code"] == "no_audience" and "asp-daily" in body["error"]["message"]
    assert not sends.running("asp23-day-3")
    assert api("GET", "/campaigns/asp23-day-3", token, status=404)["error"]["code"] == "unknown_campaign"
