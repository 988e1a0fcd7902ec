"""The ledger on SQLite and PostgreSQL: creation, claiming with consent re-checked, outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from population import populate

from newsletter.errors import CampaignStateError
from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.sending import campaigns
from newsletter.statuses import CampaignStatus, Channel, OutboxStatus, SuppressionReason
from newsletter.store import ledger as outbox
from newsletter.store.ledger import Outcome


def start(store, clock, slug="asp25-day-1", languages=("en", "fr")):
    with store.session() as session:
        campaign, created = campaigns.start_campaign(session, slug, "asp-daily", now=clock(), subject="Day 1",
                                                     languages=languages, default_language="en")
        return campaign, created


def claim(store, campaign, worker="w1", limit=100, clock=None, dead=()):
    with store.session() as session:
        return outbox.claim_batch(session, campaign, worker, limit=limit, now=clock(),
                                  stale_before=clock() - timedelta(minutes=20), dead_workers=dead)


def counts(store, campaign):
    with store.session() as session:
        return outbox.count_rows(session, campaign.id)


def test_rows_are_created_once_with_languages(store, clock):
    populate(store, 40, now=clock())
    campaign, created = start(store, clock)
    assert created
    with store.session() as session:
        from sqlalchemy import delete

        from newsletter.store import OutboxRow
        session.execute(delete(OutboxRow).where(OutboxRow.subscriber_id <= 5))
        assert outbox.create_rows(session, campaign, languages=["en", "fr"], default_language="en", now=clock()) == 5
    assert counts(store, campaign).queued == 40
    again, created = start(store, clock)
    assert not created and again.id == campaign.id
    with store.session() as session:
        assert outbox.create_rows(session, campaign, languages=["en"], default_language="en", now=clock()) == 0
    rows, _ = claim(store, campaign, limit=40, clock=clock)
    # Subscribers reading Spanish or Arabic get the default when the issue has only en and fr.
    assert {r.language for r in rows} == {"en", "fr"}
    assert sum(r.language == "fr" for r in rows) == 10


def test_claim_rechecks_consent(store, clock):
    emails = populate(store, 10, now=clock())
    campaign, _ = start(store, clock)
    with store.session() as session:
        ctx = ConsentContext(channel=Channel.LINK)
        consent.unsubscribe(session, consent.find_subscriber(session, emails[0]), ctx, now=clock())
        consent.suppress(session, emails[1], SuppressionReason.HARD_BOUNCE, now=clock())
        consent.erase(session, emails[2], now=clock())
    rows, skipped = claim(store, campaign, limit=100, clock=clock)
    assert skipped == 3
    assert sorted(r.email for r in rows) == emails[3:]
    c = counts(store, campaign)
    assert (c.sending, c.skipped) == (7, 3)
    with store.session() as session:
        reasons = sorted(line.reply for line in outbox.list_failures(session, campaign.id))
    assert reasons == ["skipped: the subscriber is suppressed", "skipped: the subscriber was erased",
                       "skipped: the subscription is unsubscribed"]


def test_claims_do_not_overlap_and_outcomes_are_recorded(store, clock):
    populate(store, 30, now=clock())
    campaign, _ = start(store, clock)
    a, _ = claim(store, campaign, "w1", limit=20, clock=clock)
    b, _ = claim(store, campaign, "w2", limit=20, clock=clock)
    assert len(a) == 20 and len(b) == 10 and not {r.id for r in a} & {r.id for r in b}
    later = clock() + timedelta(minutes=5)
    with store.session() as session:
        written = outbox.record_outcomes(session, "w1", [
            Outcome(a[0].id, OutboxStatus.SENT, "250 ok", "<m0@x>"),
            Outcome(a[1].id, OutboxStatus.DEFERRED, "451 later", "<m1@x>", next_attempt_at=later),
            Outcome(a[2].id, OutboxStatus.FAILED, "550 no such user", "<m2@x>"),
            Outcome(b[0].id, OutboxStatus.SENT, "250 ok", "<wrong>"),  # w2's row: not w1's to write
        ], now=clock())
        assert written == 3
        outbox.release_rows(session, "w1", [r.id for r in a[3:]], now=clock())
    c = counts(store, campaign)
    assert (c.sent, c.deferred, c.failed, c.sending, c.queued) == (1, 1, 1, 10, 17)
    # The deferred row is not due yet; later it is claimed again.
    again, _ = claim(store, campaign, "w1", limit=100, clock=clock)
    assert a[1].id not in {r.id for r in again} and len(again) == 17
    clock.advance(minutes=6)
    due, _ = claim(store, campaign, "w1", limit=100, clock=clock)
    assert [r.id for r in due] == [a[1].id] and due[0].attempts == 1


def test_rows_of_a_dead_or_stale_worker_are_reclaimed(store, clock):
    populate(store, 5, now=clock())
    campaign, _ = start(store, clock)
    held, _ = claim(store, campaign, "host:1:dead", limit=3, clock=clock)
    assert len(claim(store, campaign, "w2", limit=100, clock=clock)[0]) == 2
    assert claim(store, campaign, "w3", limit=100, clock=clock)[0] == []
    reclaimed, _ = claim(store, campaign, "w3", limit=100, clock=clock, dead=["host:1:dead"])
    assert sorted(r.id for r in reclaimed) == sorted(r.id for r in held)
    clock.advance(minutes=21)
    stale, _ = claim(store, campaign, "w4", limit=100, clock=clock)
    assert len(stale) == 5


def test_a_worker_never_takes_back_its_own_rows_as_stale(store, clock):
    """A row a live worker still holds (its message may be on the wire) is never claimed again by
    that worker, however old the claim: only another worker takes over a stale claim."""
    populate(store, 3, now=clock())
    campaign, _ = start(store, clock)
    held, _ = claim(store, campaign, "w1", limit=2, clock=clock)
    clock.advance(hours=15)
    again, _ = claim(store, campaign, "w1", limit=100, clock=clock)
    assert {r.id for r in again}.isdisjoint(r.id for r in held) and len(again) == 1
    taken, _ = claim(store, campaign, "w2", limit=100, clock=clock)
    assert sorted(r.id for r in taken) == sorted(r.id for r in held)


def test_campaign_lifecycle(store, clock):
    populate(store, 4, now=clock())
    campaign, _ = start(store, clock)
    with store.session() as session:
        campaigns.pause_campaign(session, campaign.slug, "by hand")
    again, created = start(store, clock)
    assert not created and again.status is CampaignStatus.SENDING
    rows, _ = claim(store, campaign, limit=100, clock=clock)
    with store.session() as session:
        outbox.record_outcomes(session, "w1", [Outcome(r.id, OutboxStatus.SENT, "250") for r in rows[:3]]
                               + [Outcome(rows[3].id, OutboxStatus.FAILED, "554 no")], now=clock())
        assert campaigns.finish_if_done(session, session.get(type(campaign), campaign.id), now=clock())
    with pytest.raises(CampaignStateError, match="retry"):
        start(store, clock)
    with store.session() as session:
        assert campaigns.retry_campaign(session, campaign.slug, now=clock()) == 1
        summary = campaigns.summarise_campaigns(session)[0]
    assert summary.status is CampaignStatus.PAUSED and summary.counts.queued == 1
    with store.session() as session:
        assert campaigns.cancel_campaign(session, campaign.slug, now=clock()) == 1
        summary = campaigns.summarise_campaigns(session)[0]
    assert summary.status is CampaignStatus.CANCELLED and summary.counts == (0, 0, 3, 0, 0, 1)
    with pytest.raises(CampaignStateError):
        start(store, clock)
