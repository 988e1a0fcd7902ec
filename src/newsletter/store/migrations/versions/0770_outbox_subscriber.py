"""an index on outbox.subscriber_id: a person's page reads the issues they received, and erasing
a person sets their ledger rows' subscriber_id to NULL; both scanned the whole ledger (the
unique key (campaign_id, subscriber_id) cannot serve a lookup by subscriber alone)

Revision ID: 0770_outbox_subscriber
Revises: 0760_personal_relay
Create Date: 2026-12-02
"""
from alembic import op

revision = '0770_outbox_subscriber'
down_revision = '0760_personal_relay'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_subscriber', 'outbox', ['subscriber_id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_subscriber', table_name='outbox')
