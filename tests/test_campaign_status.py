"""`campaigns.campaign_status`: what a sender reads before each claim, as committed now."""

from __future__ import annotations

from population import populate
from test_outbox import start

from newsletter.statuses import CampaignStatus
from newsletter.store import Campaign
from newsletter.store import campaigns as stored


def test_the_status_is_read_as_committed_and_none_for_no_campaign(store, clock):
    populate(store, 4, now=clock())
    campaign, _ = start(store, clock)
    with store.session() as session:
        assert stored.campaign_status(session, campaign.id) is CampaignStatus.SENDING
        assert stored.campaign_status(session, campaign.id + 1000) is None
    with store.session() as session:  # another unit of work pauses it
        session.get(Campaign, campaign.id).status = CampaignStatus.PAUSED
    with store.session() as session:
        assert stored.campaign_status(session, campaign.id) is CampaignStatus.PAUSED
