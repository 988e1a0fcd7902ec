"""the daily routine: scheduled sends

Revision ID: 0500_routine
Revises: 0400_staff
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0500_routine'
down_revision = '0410_editorial'
branch_labels = None
depends_on = None

SCHEDULE_STATUS = ('waiting', 'held', 'sending', 'done', 'failed', 'cancelled')


def upgrade() -> None:
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=128), nullable=False),
    sa.Column('list_slug', sa.String(length=64), nullable=True),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('local_at', sa.String(length=16), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_start', sa.String(length=5), nullable=True),
    sa.Column('window_end', sa.String(length=5), nullable=True),
    sa.Column('status', sa.Enum(*SCHEDULE_STATUS, name='schedule_status', create_constraint=True), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedules_slug'), ['slug'], unique=False)
        batch_op.create_index(batch_op.f('ix_schedules_due_at'), ['due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedules_due_at'))
        batch_op.drop_index(batch_op.f('ix_schedules_slug'))
    op.drop_table('schedules')
    sa.Enum(name='schedule_status').drop(op.get_bind(), checkfirst=True)
