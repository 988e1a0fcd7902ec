"""campaigns.status_said: why a campaign is paused or cancelled, as a message id and its values
(`texts.Text`), so that the workspace says it in its reader's language; status_reason keeps the
English for the CLI, the API and the log

Revision ID: 0780_campaign_status_said
Revises: 0770_outbox_subscriber
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0780_campaign_status_said'
down_revision = '0770_outbox_subscriber'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns') as batch_op:
        batch_op.add_column(sa.Column('status_said', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaigns') as batch_op:
        batch_op.drop_column('status_said')
