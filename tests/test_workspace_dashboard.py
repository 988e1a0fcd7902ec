"""The dashboard: lists' counts, recent campaigns with bounce and complaint rates flagged against
the providers' thresholds, and the pre-flight check (DNS answered by the test, the relay the
recording SMTP server, everything on loopback)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert, select
from staffing import add_staff, client_for, log_in, logged_in

from newsletter.people import subscriptions
from newsletter.staff import dashboard
from newsletter.staff.dashboard import BOUNCE_LIMIT, COMPLAINT_LIMIT, COMPLAINT_WARN, Flag, rate
from newsletter.staff.roles import Role
from newsletter.statuses import BounceKind, CampaignStatus, OutboxStatus
from newsletter.store import BounceEvent, Campaign, MailingList, OutboxRow, Subscriber
from population import populate



@pytest.mark.parametrize("count, sent, flag", [
    (0, 99, Flag.TOO_FEW), (50, 99, Flag.TOO_FEW),
    (1, 1000, Flag.OK), (2, 1000, Flag.WARN), (3, 1000, Flag.LIMIT),
])
def test_complaint_rates_against_gmail_and_yahoo(count, sent, flag):
    assert rate(count, sent, COMPLAINT_WARN, COMPLAINT_LIMIT).flag is flag


def test_bounce_rates_at_the_limit_are_flagged():
    assert rate(50, 1000, dashboard.BOUNCE_WARN, BOUNCE_LIMIT).flag is Flag.LIMIT
    assert rate(21, 1000, dashboard.BOUNCE_WARN, BOUNCE_LIMIT).flag is Flag.WARN
    assert rate(20, 1000, dashboard.BOUNCE_WARN, BOUNCE_LIMIT).flag is Flag.OK


def _campaign(newsletter, clock, slug: str, sent: int, hard: int, complaints: int):
    with newsletter.store.session() as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "asp-daily"))
        campaign = Campaign(slug=slug, list_id=list_id, kind="daily_summary", subject=f"Subject of {slug}",
                            status=CampaignStatus.FINISHED, source={}, created_at=clock(), started_at=clock(),
                            finished_at=clock())
        session.add(campaign)
        session.flush()
        people = session.execute(select(Subscriber.id).order_by(Subscriber.id).limit(sent)).scalars().all()
        session.execute(insert(OutboxRow), [dict(campaign_id=campaign.id, subscriber_id=p, status=OutboxStatus.SENT,
                                                 language="en", attempts=1, sent_at=clock()) for p in people])
        for n in range(hard + complaints):
            session.add(BounceEvent(subscriber_id=people[n], campaign_id=campaign.id,
                                    kind=BounceKind.HARD if n < hard else BounceKind.COMPLAINT, source="dsn",
                                    reason="test", outcome="suppressed", at=clock()))


def test_the_dashboard_shows_lists_campaigns_and_flags_rates(newsletter, clock):
    populate(newsletter.store, 1000, now=clock())
    subscriptions.create_list(newsletter, "alerts", "Campaign alerts", languages=["en"])
    _campaign(newsletter, clock, "asp24-day-1", 1000, hard=3, complaints=1)
    clock.advance(days=1)
    _campaign(newsletter, clock, "asp24-day-2", 1000, hard=60, complaints=2)
    board = dashboard.dashboard(newsletter)
    assert [(line.slug, line.active) for line in board.lists] == [("alerts", 0), ("asp-daily", 1000)]
    assert [c.slug for c in board.campaigns] == ["asp24-day-2", "asp24-day-1"]
    newest, older = board.campaigns
    assert (newest.bounces.flag, newest.complaints.flag) == (Flag.LIMIT, Flag.WARN)
    assert (older.bounces.flag, older.complaints.flag) == (Flag.OK, Flag.OK)
    assert board.worst is Flag.LIMIT
    viewer = add_staff(newsletter, "viewer@example.org", Role.VIEWER)
    page = logged_in(newsletter, viewer).get("/admin/")
    assert page.status_code == 200
    assert "6.00" in page.text and "over the limit" in page.text and "0.20" in page.text and "too high" in page.text
    assert "Gmail and Yahoo may throttle" in page.text
    assert 'href="/admin/campaigns/asp24-day-2"' in page.text  # to the campaign's own page


@pytest.fixture
def checking(newsletter, config, smtp_server, refused_port):
    """The owner's logged-in client of an installation whose base_url nobody answers at, sending
    from coalition.example, whose TXT records (SPF, DMARC) the test answers."""
    nl = type(newsletter)(config.with_changes(base_url=f"http://127.0.0.1:{refused_port}",
                                              from_address="news@coalition.example"), newsletter.store,
                          clock=newsletter.clock)
    owner = add_staff(nl, "owner@example.org", Role.OWNER)
    client = client_for(nl)
    client.app.state.txt_lookup = lambda name: {
        "coalition.example": ["v=spf1 include:_spf.relay.example -all"],
        "_dmarc.coalition.example": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@coalition.example"],
    }.get(name, [])
    assert log_in(client, owner.email).status_code == 303
    return client


def test_the_preflight_check_from_the_workspace(checking):
    page = checking.get("/admin/check")
    assert page.status_code == 200
    rows = {name: result for name, result in
            re.findall(r"<tr><td>([^<]+)</td>\s*<td class=\"\w+\">([^<]+)</td>", page.text)}
    assert rows["SPF"] == "passed" and rows["DMARC"] == "passed"
    assert rows["relay"] == "warning"  # the test relay has no TLS
    assert rows["one-click"] == "not checked"  # nothing listens at base_url
    assert "DKIM" in rows


@pytest.mark.parametrize("language, said", [
    ("fr", ["non configuré : les messages partent sans signature", "connecté sans TLS et sans connexion",
            "est injoignable (", "connexions simultanées par processus", "outlook.com et 11 autres 5"]),
    ("es", ["sin configurar: los mensajes salen sin firma", "conectado sin TLS y sin inicio de sesión",
            "no se puede acceder a http://127.0.0.1:",
            "conexiones simultáneas por proceso de envío: gmail.com, googlemail.com 10; outlook.com y 11 más 5"]),
    ("ar", ["غير مُعَدّ: تخرج الرسائل بلا توقيع", "اتصال بلا TLS وبلا تسجيل دخول", "تعذّر الوصول إلى",
            "الاتصالات المتزامنة لكل عملية إرسال: gmail.com, googlemail.com 10; outlook.com و11 غيره 5"]),
])
def test_the_preflight_details_are_in_the_workspace_language(checking, language, said):
    page = checking.get(f"/admin/check?lang={language}")
    assert page.status_code == 200
    for text in said:
        assert text in page.text
    for english in ("not configured", "messages go out unsigned", "fine for the local catcher", "cannot be reached",
                    "connections at once", " more "):
        assert english not in page.text
