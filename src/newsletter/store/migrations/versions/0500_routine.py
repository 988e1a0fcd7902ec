"""the daily routine: scheduled sends; welcome and catch-up mail; session series and digests;
pending sign-ups that expire; the retention of IPs and user agents in the consent log

consent_kind gains 'expired' (PostgreSQL adds it to its native enum; SQLite rebuilds
consent_events with its CHECK constraint widened). The append-only trigger of consent_events
now lets one UPDATE through: blanking `ip` and `user_agent` with every other column unchanged
(the retention job); anything else is still refused.

Revision ID: 0500_routine
Revises: 0410_editorial
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0500_routine'
down_revision = '0410_editorial'
branch_labels = None
depends_on = None

SCHEDULE_STATUS = ('waiting', 'held', 'sending', 'done', 'failed', 'cancelled')
ROW_STATUS = ('queued', 'sending', 'sent', 'deferred', 'failed', 'skipped')
CONSENT_KINDS = ('signup', 'confirmation_sent', 'confirmed', 'imported', 'unsubscribed', 'preferences', 'blocked',
                 'suppressed', 'lifted')
#: Columns a blanking UPDATE must leave as they were.
_KEPT = ('id', 'subscriber_id', 'list_id', 'kind', 'channel', 'at', 'source', 'consent_version', 'note')
_BLANKING_SQLITE = " AND ".join(["NEW.ip IS NULL", "NEW.user_agent IS NULL",
                                 *(f"NEW.{c} IS OLD.{c}" for c in _KEPT)])
_BLANKING_PG = " AND ".join(["NEW.ip IS NULL", "NEW.user_agent IS NULL",
                             *(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _KEPT)])
OLD_SQLITE_TRIGGER = ("CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
                      "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END")
SQLITE_TRIGGER = ("CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
                  f"WHEN NOT ({_BLANKING_SQLITE}) "
                  "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END")
PG_FUNCTION = ("CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
               f"$$ BEGIN IF {_BLANKING_PG} THEN RETURN NEW; END IF; "
               "RAISE EXCEPTION 'consent_events is append-only'; END $$")
OLD_PG_FUNCTION = ("CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'consent_events is append-only'; END $$")


def _consent_log() -> None:
    """'expired' among the kinds; blanking the origin let through the append-only trigger."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE consent_kind ADD VALUE IF NOT EXISTS 'expired'")
        op.execute(PG_FUNCTION)
        return
    op.execute("DROP TRIGGER IF EXISTS consent_events_no_update")
    with op.batch_alter_table('consent_events', recreate="always") as batch_op:
        batch_op.alter_column('kind', type_=sa.Enum(*CONSENT_KINDS, 'expired', name='consent_kind',
                                                    create_constraint=True),
                              existing_type=sa.Enum(*CONSENT_KINDS, name='consent_kind', create_constraint=True),
                              existing_nullable=False)
    op.execute(SQLITE_TRIGGER)


def upgrade() -> None:
    _consent_log()
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
    op.create_table('personal_mail',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum(*ROW_STATUS, name='personal_mail_status', create_constraint=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('last_reply', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['list_id'], ['lists.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscriber_id', 'key', name='uq_personal_mail_subscriber_key')
    )
    with op.batch_alter_table('personal_mail', schema=None) as batch_op:
        batch_op.create_index('ix_personal_mail_due', ['status', 'next_attempt_at'], unique=False)
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('venue', sa.String(length=200), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['lists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_list_id'), ['list_id'], unique=False)
    op.create_table('delivery_choices',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('delivery', sa.Enum('daily', 'digest', name='delivery', create_constraint=True), nullable=False),
    sa.Column('chosen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['lists.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id', 'list_id')
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(OLD_PG_FUNCTION)  # an enum value cannot be dropped: 'expired' stays unused
    else:
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_update")
        op.execute(OLD_SQLITE_TRIGGER)
    op.drop_table('delivery_choices')
    sa.Enum(name='delivery').drop(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_list_id'))
    op.drop_table('sessions')
    with op.batch_alter_table('personal_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_personal_mail_due')
    op.drop_table('personal_mail')
    sa.Enum(name='personal_mail_status').drop(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedules_due_at'))
        batch_op.drop_index(batch_op.f('ix_schedules_slug'))
    op.drop_table('schedules')
    sa.Enum(name='schedule_status').drop(op.get_bind(), checkfirst=True)
