"""security: the mailbox an address reaches, which the re-send limits count on

Revision ID: 0310_security
Revises: 0200_confirmation_queue
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0310_security'
down_revision = '0200_confirmation_queue'
branch_labels = None
depends_on = None

_DOTS_IGNORED = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def _mailbox(address: str) -> str:
    """addresses.canonical_mailbox as of this revision (frozen here: a migration never changes)."""
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _DOTS_IGNORED:
        local, domain = local.replace(".", "") or local, _DOTS_IGNORED[domain]
    return f"{local}@{domain}"


def upgrade() -> None:
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailbox', sa.String(length=320), nullable=True))
        batch_op.create_index('ix_subscribers_mailbox', ['mailbox'], unique=False,
                              sqlite_where=sa.text('mailbox IS NOT NULL'),
                              postgresql_where=sa.text('mailbox IS NOT NULL'))
    connection = op.get_bind()
    subscribers = sa.table('subscribers', sa.column('id', sa.Integer), sa.column('email', sa.String),
                           sa.column('mailbox', sa.String))
    email = subscribers.c.email
    rows = connection.execute(sa.select(subscribers.c.id, email).where(sa.or_(
        email.like('%+%'), email.like('%@gmail.com'), email.like('%@googlemail.com')))).fetchall()
    changes = [{"row_id": row_id, "mailbox": _mailbox(address)} for row_id, address in rows
               if _mailbox(address) != address]
    if changes:
        connection.execute(sa.update(subscribers).where(subscribers.c.id == sa.bindparam('row_id'))
                           .values(mailbox=sa.bindparam('mailbox')), changes)


def downgrade() -> None:
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_index('ix_subscribers_mailbox', sqlite_where=sa.text('mailbox IS NOT NULL'),
                            postgresql_where=sa.text('mailbox IS NOT NULL'))
        batch_op.drop_column('mailbox')
