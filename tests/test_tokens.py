"""Link tokens: signed, purpose-bound, expiring where they should, one error for every failure."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous.encoding import base64_decode

from newsletter.errors import InvalidToken
from newsletter.tokens import Purpose, TokenIssuer, issue_token, read_token

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


@pytest.mark.parametrize(("key", "list_slug", "language"), [
    ("k000000000012", "asp-daily", None),          # an unsubscribe link: written by hand
    ("Zx_9-a.b", None, "fr"),                      # a preferences link
    ("k1", "", ""),                                # empty values are left out, as the encoder leaves them
    ('with "quotes" and \\', "asp-daily", None),   # values JSON must escape: the encoder
    ("clé-été", "liste", "ar"),                    # not ASCII: the encoder
    ("k" * 40, "a-very-long-list-slug-indeed", "es"),  # over 64 bytes: itsdangerous' own path
])
def test_token_issuer_makes_what_issue_token_makes(key, list_slug, language):
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES):
        issuer = TokenIssuer(SECRET, purpose, now)
        made = issuer(key, list_slug=list_slug, language=language)
        assert made == issue_token(SECRET, purpose, key, list_slug=list_slug, language=language, now=now)
        assert issuer(key, list_slug=list_slug, language=language) == made  # the cached tail is reused
        claims = read_token(SECRET, purpose, made, now=now)
        assert (claims.subscriber_key, claims.list_slug or None, claims.language or None) == (
            key, list_slug or None, language or None)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(key=_TEXT, list_slug=st.none() | _TEXT, language=st.none() | _TEXT)
def test_token_issuer_writes_the_encoders_json_for_any_values(key, list_slug, language):
    issuer = TokenIssuer(SECRET, Purpose.UNSUBSCRIBE, NOW)
    token = issuer(key, list_slug=list_slug, language=language)
    payload = {"s": key, **({"l": list_slug} if list_slug else {}), **({"g": language} if language else {})}
    dumped = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(dumped) <= 64:  # short payloads are never compressed (longer ones: itsdangerous' own dumps)
        assert base64_decode(token.split(".")[0]) == dumped
    claims = read_token(SECRET, Purpose.UNSUBSCRIBE, token, now=NOW)
    assert (claims.subscriber_key, claims.list_slug, claims.language) == (key, list_slug or None, language or None)
