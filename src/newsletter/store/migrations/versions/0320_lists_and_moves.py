"""lists and moves: suppressions that can be lifted (with their history), suppressions carried
over from an old system's "unsubscribed" export; lists with names and descriptions per language,
and archived lists

Revision ID: 0320_lists_and_moves
Revises: 0310_security
Create Date: 2026-12-02

New enum values: consent_kind 'lifted' (a suppression lifted by an administrator) and
suppression_reason 'unsubscribed' (an address an imported file says had left). PostgreSQL adds
them to its native enums; SQLite rebuilds the two tables with their CHECK constraints widened
(and the append-only trigger of consent_events made again, since a rebuild drops it).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0320_lists_and_moves'
down_revision = '0310_security'
branch_labels = None
depends_on = None

CONSENT_KINDS = ('signup', 'confirmation_sent', 'confirmed', 'imported', 'unsubscribed', 'preferences', 'blocked',
                 'suppressed')
SUPPRESSION_REASONS = ('erased', 'hard_bounce', 'soft_bounces', 'complaint', 'blocked', 'admin')
SQLITE_TRIGGER = ("CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
                  "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END")


def _widen(table: str, column: str, enum_name: str, old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Let `column` hold the values `new` as well as `old`."""
    if op.get_bind().dialect.name == "postgresql":
        for value in new:
            op.execute(f"ALTER TYPE {enum_name} ADD VALUE IF NOT EXISTS '{value}'")
        return
    with op.batch_alter_table(table, recreate="always") as batch_op:
        batch_op.alter_column(column, type_=sa.Enum(*old, *new, name=enum_name, create_constraint=True),
                              existing_type=sa.Enum(*old, name=enum_name, create_constraint=True),
                              existing_nullable=False)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _widen('suppressions', 'reason', 'suppression_reason', SUPPRESSION_REASONS, ('unsubscribed',))
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_update")
    _widen('consent_events', 'kind', 'consent_kind', CONSENT_KINDS, ('lifted',))
    if sqlite:
        op.execute(SQLITE_TRIGGER)
    op.create_table('suppression_lifts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Enum(*SUPPRESSION_REASONS, 'unsubscribed', name='suppression_reason',
                                create_constraint=True).with_variant(
        postgresql.ENUM(name='suppression_reason', create_type=False), 'postgresql'), nullable=False),
    sa.Column('suppressed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('suppression_note', sa.Text(), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('why', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('suppression_lifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppression_lifts_address_hash'), ['address_hash'], unique=False)
    with op.batch_alter_table('lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('translations', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lists', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('archived_at')
        batch_op.drop_column('translations')
    with op.batch_alter_table('suppression_lifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppression_lifts_address_hash'))
    op.drop_table('suppression_lifts')
