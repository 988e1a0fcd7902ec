"""The statements about REST API tokens. Which token may do what is `staff.api_tokens`' business."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import ApiToken

__all__ = ["find_token", "token_by_hash", "all_tokens", "add_token", "note_use"]


def find_token(session: Session, name: str) -> ApiToken | None:
    """The token named `name`, or None."""
    return session.scalar(select(ApiToken).where(ApiToken.name == name))


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    """The token whose SHA-256 is `token_hash`, or None."""
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def all_tokens(session: Session) -> list[ApiToken]:
    """Every token, by name."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def add_token(session: Session, *, name: str, token_hash: str, prefix: str, scopes: list[str], per_minute: int,
              now: datetime) -> ApiToken:
    token = ApiToken(name=name, token_hash=token_hash, prefix=prefix, scopes=scopes, per_minute=per_minute,
                     created_at=now)
    session.add(token)
    session.flush()
    return token


def note_use(session: Session, token_id: int, now: datetime) -> None:
    """Record that the token was used `now`."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
