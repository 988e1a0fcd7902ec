"""ledger chunks: how far a campaign's ledger is written (it is written in chunks while it sends)

Revision ID: 0740_ledger_chunks
Revises: 0730_schedule_segments
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0740_ledger_chunks'
down_revision = '0730_schedule_segments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ledger_through', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('ledger_until', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('ledger_until')
        batch_op.drop_column('ledger_through')
