"""bounce events and soft-bounce scores

Revision ID: 0100_bounces
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0100_bounces'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bounce_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('address_hash', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.Enum('hard', 'soft', 'delayed', 'complaint', 'unknown', name='bounce_kind', create_constraint=True), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('diagnostic_code', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('report_message_id', sa.String(length=255), nullable=True),
    sa.Column('report_digest', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bounce_events_address_hash'), ['address_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_events_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_events_report_digest'), ['report_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_events_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('bounce_scores',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('last_counted_on', sa.Date(), nullable=True),
    sa.Column('last_bounce_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id')
    )


def downgrade() -> None:
    op.drop_table('bounce_scores')
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounce_events_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_bounce_events_report_digest'))
        batch_op.drop_index(batch_op.f('ix_bounce_events_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_bounce_events_address_hash'))
    op.drop_table('bounce_events')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS bounce_kind")
