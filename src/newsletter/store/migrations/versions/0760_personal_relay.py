"""personal mail keeps its relay: each welcome, catch-up or digest row names the relay that
answered (its `[relays.NAME]`, or host:port of `smtp_url`), as each ledger row does

Revision ID: 0760_personal_relay
Revises: 0740_ledger_chunks
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0760_personal_relay'
down_revision = '0740_ledger_chunks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('personal_mail', sa.Column('relay', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('personal_mail', schema=None) as batch_op:
        batch_op.drop_column('relay')
