"""The REST API over HTTP (Starlette's TestClient) on SQLite and PostgreSQL: every route, every
scope, the errors with their stable codes, the rate limit, and every response checked against
the OpenAPI document it serves."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta

import jsonschema
import pytest
from conftest import REPO
from openapi_spec_validator import validate
from test_confirmation_queue import drain

from newsletter.api import OPERATIONS, api_routes
from newsletter.api.openapi import SCHEMAS
from newsletter.attributes import parse_attribute_specs
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

from newsletter.app import create_app

SPECS = parse_attribute_specs({"organisation": {"type": "text", "organisation": True},
                               "country": {"type": "country"}, "role": {"type": "choice", "choices": ["press"]}})
DAY_3 = {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))}
DAY_5 = {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO / "examples" / "asp23").glob("day-5.*.md"))}
ROOT = {"components": {"schemas": SCHEMAS}}


class Api:
    """A client that checks every answer against the OpenAPI document and records which
    operations were called."""

    def __init__(self, client: TestClient, document: dict):
        self.client = client
        self.document = document
        self.called: set[tuple[str, str]] = set()
        self.templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                          for path in document["paths"]]

    def __call__(self, method: str, path: str, token: str | None = None, *, status: int, **kwargs):
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
        response = self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        template = next((t for pattern, t in self.templates if pattern.match(path.split("?")[0])), None)
        body = response.json()
        if template is None or method.lower() not in self.document["paths"][template]:
            jsonschema.validate(body, {**ROOT, "$ref": "#/components/schemas/Error"})
            return body
        operation = self.document["paths"][template][method.lower()]
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(body, {**ROOT, **schema})
        self.called.add((method, template))
        return body


@pytest.fixture
def newsletter(config, store, clock, tmp_path):
    n = Newsletter(config.with_changes(attributes=SPECS, issues_dir=str(tmp_path / "issues"),
                                       postmark_webhook_auth="pm:pass"), store, clock=clock)
    with n.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
    return n


@pytest.fixture
def sends(newsletter):
    return BackgroundSends(newsletter, options=SendOptions(concurrency=2, idle_poll=3600.0))


@pytest.fixture
def api(newsletter, sends):
    app = Starlette(routes=[Mount("/api/v1", routes=api_routes(newsletter, sends=sends))])
    with TestClient(app) as client:
        document = client.get("/api/v1/openapi.json").json()
        yield Api(client, document)


@pytest.fixture
def tokens(newsletter):
    return {scope: api_tokens.create_token(newsletter, f"t-{scope}", [scope], per_minute=0)
            for scope in ("read", "subscribers", "send")}


def test_the_document_is_valid_openapi_and_names_every_operation(api):
    validate(api.document)
    assert api.document["openapi"] == "3.1.0"
    named = {(m.upper(), p) for p, ops in api.document["paths"].items() for m in ops}
    assert named == {(op.method, op.path) for op in OPERATIONS}


def test_the_web_app_mounts_the_api(newsletter, tokens):
    with TestClient(create_app(newsletter)) as client:
        answer = client.get("/api/v1/lists", headers={"Authorization": f"Bearer {tokens['read']}"})
        assert answer.status_code == 200 and answer.json()["lists"][0]["slug"] == "asp-daily"
        assert client.get("/api/v1/nothing").json()["error"]["code"] == "not_found"


def test_an_oversized_body_is_a_413_before_it_is_read_whole(api, newsletter, tokens):
    """The API reads its JSON through web.forms.read_body: refused from Content-Length, or while streaming."""
    from newsletter.api.endpoint import MAX_BODY

    headers = {"Authorization": f"Bearer {tokens['subscribers']}", "Content-Type": "application/json"}
    declared = api.client.post("/api/v1/subscribers", headers=headers, content=b" " * (MAX_BODY + 1))
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"

    def chunks():  # no Content-Length: chunked, past the limit
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536

    streamed = api.client.post("/api/v1/subscribers", headers=headers, content=chunks())
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "too_large"
    nested = api.client.post("/api/v1/subscribers", headers=headers, content=b"[" * 100_000 + b"]" * 100_000)
    assert nested.status_code == 400 and nested.json()["error"]["code"] == "bad_request"


# -- tokens, scopes, limits ------------------------------------------------------------------------

def test_a_request_without_a_valid_token_is_refused(api, newsletter, tokens):
    for token in (None, "nlt_not-a-token", "Basic abc", tokens["read"] + "x"):
        body = api("GET", "/lists", token, status=401)
        assert body["error"]["code"] == "unauthorized"
    assert api.client.get("/api/v1/lists").headers["www-authenticate"] == "Bearer"
    api_tokens.revoke_token(newsletter, "t-read")
    assert api("GET", "/lists", tokens["read"], status=401)["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.scope], ids=lambda op: f"{op.method} {op.path}")
def test_every_operation_needs_its_own_scope(api, tokens, op):
    path = op.path.format(email="ana@example.org", name="x", slug="x")
    for scope, token in tokens.items():
        if scope == op.scope:
            continue
        body = api(op.method, path, token, status=403, json={})
        assert body["error"] == {"code": "missing_scope", "scope": op.scope,
                                 "message": f"this API token does not have the {op.scope!r} scope"}


def test_a_token_over_its_rate_is_told_when_to_come_back(api, newsletter, clock):
    token = api_tokens.create_token(newsletter, "slow", ["read"], per_minute=2)
    api("GET", "/lists", token, status=200)
    api("GET", "/lists", token, status=200)
    body = api("GET", "/lists", token, status=429)
    assert body["error"]["code"] == "rate_limited" and body["error"]["retry_after"] == 60
    assert api.client.get("/api/v1/lists", headers={"Authorization": f"Bearer {token}"}).headers["retry-after"] == "60"
    clock.advance(seconds=61)
    api("GET", "/lists", token, status=200)
    [line] = [t for t in api_tokens.list_tokens(newsletter) if t.name == "slow"]
    assert line.last_used_at == clock() and line.prefix == token[:8]


def test_tokens_are_made_with_known_scopes_and_kept_only_as_hashes(newsletter, store):
    from newsletter.errors import InvalidField
    from newsletter.store import ApiToken

    token = api_tokens.create_token(newsletter, "civicrm", ["read", "subscribers"])
    assert token.startswith("nlt_") and len(token) == 47
    with store.session() as session:
        [row] = session.query(ApiToken).all()
        assert token not in (row.token_hash, row.prefix) and row.scopes == ["read", "subscribers"]
    for bad in (dict(name="civicrm", scopes=["read"]), dict(name="x", scopes=["admin"]),
                dict(name="x", scopes=[]), dict(name="Bad Name", scopes=["read"])):
        with pytest.raises(InvalidField):
            api_tokens.create_token(newsletter, **bad)


# -- people ----------------------------------------------------------------------------------------

def test_subscribers_are_created_found_changed_unsubscribed_and_erased(api, newsletter, tokens, smtp_server):
    read, write = tokens["read"], tokens["subscribers"]
    new = {"email": "ana@example.org", "name": "Ana Ruiz", "language": "es", "lists": ["asp-daily"],
           "attributes": {"country": "Argentina", "organisation": "Abogadas por la Justicia"}}
    assert api("POST", "/subscribers", write, status=202, json=new)["status"] == "accepted"
    # The same answer for an address already known.
    assert api("POST", "/subscribers", write, status=202, json=new)["status"] == "accepted"
    assert drain(newsletter).sent == 1 and smtp_server.to("ana@example.org")
    body = api("POST", "/subscribers", write, status=422, json={**new, "email": "not-an-address"})
    assert body["error"]["code"] == "invalid_address"
    body = api("POST", "/subscribers", write, status=422, json={**new, "attributes": {"country": "Atlantis"}})
    assert body["error"]["code"] == "invalid_field" and body["error"]["field"] == "country"
    assert api("POST", "/subscribers", write, status=404, json={**new, "lists": ["nope"]})["error"]["code"] == \
        "unknown_list"
    assert api("POST", "/subscribers", write, status=400, json={**new, "lists": "asp-daily"})["error"]["code"] == \
        "bad_request"
    assert api("POST", "/subscribers", write, status=400, content=b"{not json")["error"]["code"] == "bad_request"

    found = api("GET", "/subscribers?q=RUIZ", read, status=200)["subscribers"]
    assert [(p["email"], p["attributes"]["country"]) for p in found] == [("ana@example.org", "AR")]
    assert api("GET", "/subscribers?q=100%25", read, status=200)["subscribers"] == []
    person = api("GET", "/subscribers/ana@example.org", read, status=200)
    assert person["subscriptions"][0]["status"] == "pending" and person["consent_log"][0]["channel"] == "api"
    assert person["consent_log"][0]["source"] == "api:t-subscribers"
    changed = api("PATCH", "/subscribers/ana@example.org", write, status=200,
                  json={"attributes": {"role": "press", "organisation": ""}})
    assert changed["attributes"] == {"country": "AR", "role": "press"}
    from newsletter.people import subscriptions as people_subscriptions

    logged = people_subscriptions.consent_events(newsletter, "ana@example.org")[-1]
    assert (logged.event, logged.channel, logged.source) == ("preferences", "api", "api:t-subscribers")
    assert logged.note == "attributes: organisation removed (was Abogadas por la Justicia); role=press"
    assert api("PATCH", "/subscribers/ana@example.org", write, status=400, json={"name": "x"})["error"]["code"] == \
        "bad_request"
    listed = api("GET", "/subscriptions?list=asp-daily&status=pending", read, status=200)["subscriptions"]
    assert listed == [{"email": "ana@example.org", "name": "Ana Ruiz", "language": "es", "list": "asp-daily",
                       "status": "pending", "organisation": "", "country": "AR", "role": "press"}]
    assert api("GET", "/subscriptions?status=gone", read, status=400)["error"]["code"] == "bad_request"
    left = api("POST", "/subscribers/ana@example.org/unsubscribe", write, status=200, json={"list": "asp-daily"})
    assert left == {"unsubscribed_from": ["asp-daily"]}
    assert api("DELETE", "/subscribers/ana@example.org", write, status=200) == {"erased": True}
    body = api("GET", "/subscribers/ana@example.org", read, status=404)
    assert body["error"]["code"] == "unknown_subscriber"
    suppressed = api("GET", "/suppressions?limit=5", read, status=200)["suppressions"]
    assert [s["reason"] for s in suppressed] == ["erased"] and suppressed[0]["address"] is None
    assert api("GET", "/suppressions?reason=lost", read, status=422)["error"]["code"] == "invalid_field"
    assert api("GET", "/lists", read, status=200)["lists"][0]["counts"]["unsubscribed"] == 0


def test_the_event_log_reads_in_order_after_a_cursor(api, newsletter, tokens):
    for address in ("a@example.org", "b@example.org"):
        api("POST", "/subscribers", tokens["subscribers"], status=202, json={"email": address, "lists": ["asp-daily"]})
    first = api("GET", "/events?limit=1", tokens["read"], status=200)
    assert [e["email"] for e in first["events"]] == ["a@example.org"] and first["events"][0]["event"] == "signup"
    rest = api("GET", f"/events?after={first['next_after']}", tokens["read"], status=200)
    assert [e["email"] for e in rest["events"]][0] != "a@example.org" or rest["events"][0]["id"] > first["next_after"]
    assert all(e["id"] > first["next_after"] for e in rest["events"])
    assert api("GET", f"/events?after={rest['next_after']}", tokens["read"], status=200) == {
        "events": [], "next_after": rest["next_after"]}
    assert api("GET", "/events?limit=lots", tokens["read"], status=400)["error"]["code"] == "bad_request"


def test_segments_are_saved_shown_and_deleted(api, newsletter, tokens):
    write, read = tokens["subscribers"], tokens["read"]
    saved = api("POST", "/segments", write, status=201, json={"name": "press", "expression": "role = press"})
    assert saved["expression"] == "role = press"
    body = api("POST", "/segments", write, status=422,
               json={"name": "evil", "expression": "role = press; DROP TABLE subscribers"})
    assert body["error"]["code"] == "invalid_segment" and body["error"]["column"] == 13
    assert [s["name"] for s in api("GET", "/segments", read, status=200)["segments"]] == ["press"]
    shown = api("GET", "/segments/press?list=asp-daily&sample=3", read, status=200)
    assert shown["audience"]["total"] == 0 and shown["audience"]["list_slug"] == "asp-daily"
    assert api("DELETE", "/segments/press", write, status=200) == {"deleted": "press"}
    assert api("GET", "/segments/press", read, status=404)["error"]["code"] == "unknown_segment"


# -- campaigns -------------------------------------------------------------------------------------

def test_a_campaign_is_created_from_content_sent_reported_and_cannot_be_paused_when_done(
        api, newsletter, sends, tokens, smtp_server):
    from population import populate

    populate(newsletter.store, 4, now=newsletter.clock())
    send, read = tokens["send"], tokens["read"]
    plan = api("POST", "/campaigns", send, status=201, json={"content": DAY_3})
    assert plan["slug"] == "asp23-day-3" and plan["total"] == 4 and plan["segment"] is None
    broken = {**DAY_3, "day-3.en.md": DAY_3["day-3.en.md"].replace("slug: asp23-day-3", "slug: [oops")}
    body = api("POST", "/campaigns", send, status=422, json={"content": broken})
    assert body["error"]["code"] == "invalid_content" and "/" not in body["error"]["message"].split(":")[0]
    body = api("POST", "/campaigns", send, status=422, json={"content": {"../../etc.en.md": "x"}})
    assert body["error"]["code"] == "invalid_field"
    assert api("GET", "/campaigns/asp23-day-3", read, status=404)["error"]["code"] == "unknown_campaign"
    started = api("POST", "/campaigns/asp23-day-3/send", send, status=202, json={})
    assert started["status"] == "sending"
    assert sends.wait("asp23-day-3", timeout=60).counts.sent == 4
    assert len([r for r in smtp_server.received if r.rcpt_tos[0].startswith("person")]) == 4
    shown = api("GET", "/campaigns/asp23-day-3", read, status=200)
    assert shown["status"] == "finished" and shown["counts"]["sent"] == 4
    assert api("GET", "/campaigns", read, status=200)["campaigns"][0]["slug"] == "asp23-day-3"
    report = api("GET", "/campaigns/asp23-day-3/report", read, status=200)
    assert report["failures"] == [] and report["counts"]["sent"] == 4 and report["organisations_left"] == []
    assert report["relays"] == {f"127.0.0.1:{smtp_server.port}": {"sent": 4}}
    body = api("POST", "/campaigns/asp23-day-3/pause", send, status=409)
    assert body["error"]["code"] == "campaign_state"
    body = api("POST", "/campaigns", send, status=409, json={"content": DAY_3})
    assert body["error"]["code"] == "campaign_state"


def test_a_campaign_is_scheduled_and_a_sending_one_paused(api, newsletter, tokens):
    from population import populate

    from newsletter.sending import campaigns

    populate(newsletter.store, 2, now=newsletter.clock(), start=100)
    send = tokens["send"]
    api("POST", "/campaigns", send, status=201, json={"content": DAY_5})
    at = (newsletter.clock() + timedelta(days=2)).strftime("%Y-%m-%d 19:00")
    body = api("POST", "/campaigns/asp23-day-5/schedule", send, status=404,
               json={"at": at, "zone": "Europe/Amsterdam", "segment": "nobody"})
    assert body["error"]["code"] == "unknown_segment"
    api("POST", "/segments", tokens["subscribers"], status=201, json={"name": "press-desk", "expression": "role = press",
                                                                     "replace": True})
    view = api("POST", "/campaigns/asp23-day-5/schedule", send, status=201,
               json={"at": at, "zone": "Europe/Amsterdam", "segment": "press-desk"})
    assert view["slug"] == "asp23-day-5" and view["zone"] == "Europe/Amsterdam" and view["status"] == "waiting"
    assert view["segment"] == "press-desk"
    body = api("POST", "/campaigns/asp23-day-5/schedule", send, status=422, json={"at": at, "zone": "Mars/Olympus"})
    assert body["error"]["code"] == "invalid_field"
    body = api("POST", "/campaigns/nothing-here/schedule", send, status=422, json={"at": at, "zone": "UTC"})
    assert body["error"]["code"] == "invalid_content"
    other = {name: text.replace("slug: asp23-day-3", "slug: asp23-day-3-bis") for name, text in DAY_3.items()}
    plan = api("POST", "/campaigns", send, status=201, json={"content": other})
    with newsletter.store.session() as session:  # a campaign another sender is sending
        campaigns.start_campaign(session, plan["slug"], "asp-daily", now=newsletter.clock())
    paused = api("POST", f"/campaigns/{plan['slug']}/pause", send, status=200)
    assert paused["status"] == "paused" and paused["status_reason"] == "paused through the API"


def test_a_provider_webhook_needs_no_token_but_the_providers_own_proof(api, newsletter, tokens):
    import base64

    api("POST", "/subscribers", tokens["subscribers"], status=202, json={"email": "ana@example.org",
                                                                       "lists": ["asp-daily"]})
    bounce = (REPO / "tests" / "fixtures" / "providers" / "postmark_bounce.json").read_text().replace(
        "RECIPIENT", "ana@example.org")
    good = {"Authorization": "Basic " + base64.b64encode(b"pm:pass").decode()}
    body = api("POST", "/providers/postmark", status=200, content=bounce, headers=good)
    assert body == {"provider": "postmark", "reports": 1, "kinds": ["hard"], "note": ""}
    refused = api("POST", "/providers/postmark", status=403, content=bounce)
    assert refused["error"]["code"] == "webhook_refused"
    assert api("POST", "/providers/mailgun", status=403, content=b"{}")["error"]["message"].endswith(
        "it is not set up (mailgun_signing_key is empty)")


def test_unknown_routes_and_methods_answer_json(api, tokens):
    assert api("GET", "/nothing", tokens["read"], status=404)["error"]["code"] == "not_found"
    assert api("PUT", "/lists", tokens["read"], status=405)["error"]["code"] == "method_not_allowed"


def test_every_operation_is_exercised_with_a_checked_answer(api, newsletter, sends, tokens, smtp_server):
    """The tests above between them call every operation; this one does so again in one place,
    so that a new operation without a test of its answer fails here."""
    test_subscribers_are_created_found_changed_unsubscribed_and_erased(api, newsletter, tokens, smtp_server)
    test_segments_are_saved_shown_and_deleted(api, newsletter, tokens)
    test_the_event_log_reads_in_order_after_a_cursor(api, newsletter, tokens)
    test_a_campaign_is_created_from_content_sent_reported_and_cannot_be_paused_when_done(
        api, newsletter, sends, tokens, smtp_server)
    test_a_campaign_is_scheduled_and_a_sending_one_paused(api, newsletter, tokens)
    test_a_provider_webhook_needs_no_token_but_the_providers_own_proof(api, newsletter, tokens)
    assert api.called == {(op.method, op.path) for op in OPERATIONS}


def test_every_error_code_is_documented():
    from newsletter.api.endpoint import ERROR_CODES

    text = (REPO / "docs" / "api.md").read_text()
    for code in [code for _, _, code in ERROR_CODES] + ["unauthorized", "missing_scope", "rate_limited",
                                                         "bad_request", "not_found", "method_not_allowed"]:
        assert f"`{code}`" in text, code
    for op in OPERATIONS:
        assert f"| {op.method} | `{op.path}" in text, op.path
