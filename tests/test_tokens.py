"""Link tokens: signed, purpose-bound, expiring where they should, one error for every failure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.errors import InvalidToken
from newsletter.tokens import Purpose, issue_token, read_token

SECRET = b"k" * 32
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_round_trip_carries_no_row_id():
    token = issue_token(SECRET, Purpose.UNSUBSCRIBE, "r4nd0mKey", list_slug="asp-daily", language="fr", now=NOW)
    claims = read_token(SECRET, Purpose.UNSUBSCRIBE, token, now=NOW)
    assert (claims.subscriber_key, claims.list_slug, claims.language) == ("r4nd0mKey", "asp-daily", "fr")


def test_confirm_expires_after_seven_days_unsubscribe_never():
    confirm = issue_token(SECRET, Purpose.CONFIRM, "k", now=NOW)
    unsub = issue_token(SECRET, Purpose.UNSUBSCRIBE, "k", now=NOW)
    assert read_token(SECRET, Purpose.CONFIRM, confirm, now=NOW + timedelta(days=6, hours=23))
    with pytest.raises(InvalidToken):
        read_token(SECRET, Purpose.CONFIRM, confirm, now=NOW + timedelta(days=7, seconds=1))
    assert read_token(SECRET, Purpose.UNSUBSCRIBE, unsub, now=NOW + timedelta(days=3650))


@pytest.mark.parametrize("issued, read", [(Purpose.UNSUBSCRIBE, Purpose.CONFIRM), (Purpose.CONFIRM, Purpose.UNSUBSCRIBE),
                                          (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE), (Purpose.BLOCK, Purpose.CONFIRM)])
def test_wrong_purpose_is_refused(issued, read):
    token = issue_token(SECRET, issued, "k", now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, read, token, now=NOW)


def test_other_secret_is_refused():
    token = issue_token(SECRET, Purpose.UNSUBSCRIBE, "k", now=NOW)
    with pytest.raises(InvalidToken):
        read_token(b"x" * 32, Purpose.UNSUBSCRIBE, token, now=NOW)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.sampled_from("ABCxyz019-_."))
def test_any_changed_character_is_refused(position, replacement):
    token = issue_token(SECRET, Purpose.UNSUBSCRIBE, "someKey", list_slug="asp-daily", now=NOW)
    i = position % len(token)
    if token[i] == replacement:
        return
    tampered = token[:i] + replacement + token[i + 1:]
    try:
        claims = read_token(SECRET, Purpose.UNSUBSCRIBE, tampered, now=NOW)
    except InvalidToken:
        return
    raise AssertionError(f"a changed token was accepted: {tampered!r} -> {claims}")


@settings(max_examples=100, deadline=None)
@given(garbage=st.text(max_size=200))
def test_garbage_gives_the_one_error(garbage):
    with pytest.raises(InvalidToken) as info:
        read_token(SECRET, Purpose.CONFIRM, garbage, now=NOW)
    assert str(info.value) == str(InvalidToken())


def _variants(token: str) -> list[str]:
    """Other spellings of `token` that decode to the same bytes under a lenient base64 reader."""
    payload, stamp, signature = token.rsplit(".", 2)
    flipped = signature[:-1] + chr(ord(signature[-1]) ^ 1)  # the last character's slack bits
    return [
        token + "=", token + "==", token + "===", token + "\u00e9", token + "\u200b", "\u00e9" + token,
        token + " ", " " + token, token + "\n", token + "\t", token + "%3D", token.replace(".", "..", 1),
        payload + "==." + stamp + "." + signature, payload + "." + stamp + "==." + signature,
        payload + "." + stamp + "." + signature + "=", payload + "\u00e9." + stamp + "." + signature,
        payload + "." + stamp + "\u00e9." + signature, payload + "." + stamp + "." + flipped,
        token[:5] + "\u0660" + token[5:], token + "." + "AA",
    ]


@pytest.mark.parametrize("purpose", list(Purpose))
def test_only_the_canonical_spelling_of_a_token_is_accepted(purpose):
    token = issue_token(SECRET, purpose, "kEy_-09", list_slug="asp-daily", now=NOW)
    assert read_token(SECRET, purpose, token, now=NOW).subscriber_key == "kEy_-09"
    variants = [v for v in _variants(token) if v != token]
    assert len(variants) == 20
    accepted = []
    for variant in variants:
        try:
            read_token(SECRET, purpose, variant, now=NOW)
        except InvalidToken:
            continue
        accepted.append(variant)
    assert accepted == []


@settings(max_examples=200, deadline=None)
@given(extra=st.text(min_size=1, max_size=4))
def test_nothing_appended_to_a_token_is_accepted(extra):
    token = issue_token(SECRET, Purpose.UNSUBSCRIBE, "someKey", now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, Purpose.UNSUBSCRIBE, token + extra, now=NOW)
