"""relays: each ledger row keeps the relay that took its message and that relay's reply code;
each bounce event the mail provider whose webhook reported it

outbox gains `relay` (the relay's name, or host:port with a single `smtp_url`) and
`reply_code` (the relay's final SMTP reply code; its text stays in `last_reply`).
bounce_events gains `provider` (ses, postmark, mailgun, sendgrid; NULL: read from a mailbox
or at SMTP time).

Revision ID: 0720_relays
Revises: 0600_integrations
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0720_relays'
down_revision = '0600_integrations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox', sa.Column('relay', sa.String(length=64), nullable=True))
    op.add_column('outbox', sa.Column('reply_code', sa.Integer(), nullable=True))
    op.add_column('bounce_events', sa.Column('provider', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.drop_column('provider')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('reply_code')
        batch_op.drop_column('relay')
