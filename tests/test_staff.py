"""Staff accounts, sessions and the audit trail as library calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from staffing import PASSWORD, add_staff

from newsletter.errors import (
    InvalidField,
    InvalidToken,
    LoginRefused,
    StaffMemberExists,
    StaffStateError,
)
from newsletter.staff import accounts, audit, sessions
from newsletter.staff.audit import Actor
from newsletter.staff.roles import Action, Role, allowed
from newsletter.statuses import StaffStatus


def test_an_invited_account_sets_its_password_once_and_logs_in(newsletter):
    invitation = accounts.add_member(newsletter, "Coordinator@Example.org", Role.OWNER, name="Amina")
    assert invitation.member.status is StaffStatus.INVITED and invitation.member.email == "coordinator@example.org"
    token = invitation.link.rsplit("/", 1)[1]
    member = accounts.accept_invitation(newsletter, token, PASSWORD)
    assert member.status is StaffStatus.ACTIVE
    with pytest.raises(InvalidToken):
        accounts.accept_invitation(newsletter, token, "another long password")
    login = sessions.login(newsletter, "coordinator@example.org", PASSWORD)
    assert sessions.current(newsletter, login.cookie).member.id == member.id
    with pytest.raises(LoginRefused):
        sessions.login(newsletter, "coordinator@example.org", "not the password")


def test_passwords_are_argon2id_and_never_stored_plain(newsletter):
    add_staff(newsletter, "editor@example.org", Role.EDITOR)
    with newsletter.store.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM staff_members")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_short_passwords_are_refused_with_the_reason(newsletter):
    invitation = accounts.add_member(newsletter, "editor@example.org", Role.EDITOR)
    with pytest.raises(InvalidField) as caught:
        accounts.accept_invitation(newsletter, invitation.link.rsplit("/", 1)[1], "short")
    assert caught.value.field == "password" and "12" in caught.value.reason


def test_an_address_has_one_account(newsletter):
    add_staff(newsletter, "editor@example.org", Role.EDITOR)
    with pytest.raises(StaffMemberExists):
        accounts.add_member(newsletter, "editor@example.org", Role.VIEWER)


def test_a_translator_needs_languages_and_gets_only_theirs(newsletter):
    with pytest.raises(InvalidField):
        accounts.add_member(newsletter, "t@example.org", Role.TRANSLATOR)
    translator = add_staff(newsletter, "t@example.org", Role.TRANSLATOR, languages=["fr", "ar"])
    assert allowed(translator, Action.TRANSLATE, language="fr")
    assert not allowed(translator, Action.TRANSLATE, language="en")
    assert not allowed(translator, Action.TRANSLATE)
    assert not allowed(translator, Action.SEND)


def test_revoking_ends_sessions_and_the_last_owner_stays(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    sender = add_staff(newsletter, "sender@example.org", Role.SENDER)
    login = sessions.login(newsletter, sender.email, PASSWORD)
    accounts.revoke(newsletter, Actor(owner), sender.email)
    assert sessions.current(newsletter, login.cookie) is None
    with pytest.raises(LoginRefused):
        sessions.login(newsletter, sender.email, PASSWORD)
    with pytest.raises(StaffStateError):
        accounts.revoke(newsletter, Actor(owner), owner.email)


def test_the_audit_trail_cannot_be_edited_or_deleted(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    audit.note(newsletter, Actor(owner, "192.0.2.7"), Action.EXPORT_PERSON, "someone@example.net")
    for statement in ("UPDATE audit_events SET actor = 'nobody'", "DELETE FROM audit_events"):
        with pytest.raises(Exception) as caught:
            with newsletter.store.engine.begin() as conn:
                conn.execute(text(statement))
        assert "append-only" in str(caught.value)
    page = audit.lines(newsletter)
    assert page.lines[0].actor == "owner@example.org" and page.lines[0].ip == "192.0.2.7"
    assert page.lines[0].action == "people.export"


def test_the_audit_export_is_csv_safe_for_spreadsheets(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    audit.note(newsletter, Actor(owner), "people.edit", "=HYPERLINK(\"http://x\")", "name")
    exported = "".join(audit.export_csv(newsletter))
    assert exported.splitlines()[0] == "at,actor,action,target,detail,ip"
    assert "'=HYPERLINK" in exported
