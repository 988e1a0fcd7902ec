"""scheduled sends take a segment: schedules.segment, the name of the segment to send to

The name, not a foreign key: the segment is looked up (and its expression read) when the
schedule fires, and a segment deleted meanwhile fails the schedule with its reason; a key that
went NULL with the segment would mail the whole list instead.

Revision ID: 0730_schedule_segments
Revises: 0720_relays
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0730_schedule_segments'
down_revision = '0720_relays'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('segment', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_column('segment')
