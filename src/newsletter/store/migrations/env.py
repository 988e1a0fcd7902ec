"""Alembic environment: runs on the connection `Store.upgrade()` hands over."""

from alembic import context

from newsletter.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `Store.upgrade()` runs migrations
    raise RuntimeError("run migrations through `newsletter init` (Store.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
