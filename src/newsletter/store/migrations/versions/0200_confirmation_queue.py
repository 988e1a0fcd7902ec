"""confirmation queue: sign-ups record their confirmation mail; the server sends it in batches

Revision ID: 0200_confirmation_queue
Revises: 0100_bounces
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0200_confirmation_queue'
down_revision = '0100_bounces'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('confirmation_queue',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('list_slugs', sa.Text(), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('confirmation_queue', schema=None) as batch_op:
        batch_op.create_index('ix_confirmation_queue_due', ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_confirmation_queue_subscriber_id'), ['subscriber_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('confirmation_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_confirmation_queue_subscriber_id'))
        batch_op.drop_index('ix_confirmation_queue_due')
    op.drop_table('confirmation_queue')
