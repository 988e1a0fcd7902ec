"""VERP return paths: round trip, case folding, length, and tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.errors import InvalidVerp, NewsletterError
from newsletter.mail.kinds import MailKind
from newsletter.mail.postmark import Postmark
from newsletter.mail.verp import (
    MAX_LOCAL_PART,
    VerpReference,
    is_verp_address,
    read_verp,
    verp_address,
)
from newsletter.people.consent import new_subscriber_key

SECRET = b"test-secret-key-0123456789abcdef"


def test_round_trip_and_shape() -> None:
    key = new_subscriber_key()
    address = verp_address(SECRET, "bounces@news.example.org", 42, key)
    local, _, domain = address.partition("@")
    assert domain == "news.example.org"
    assert local.startswith("bounces+")
    assert len(local) <= MAX_LOCAL_PART
    assert local == local.lower()
    # Opaque: neither the key nor the campaign number can be read off the address.
    assert key.lower() not in address.lower()
    assert read_verp(SECRET, address) == (42, key, MailKind.CAMPAIGN)
    assert is_verp_address(address, "bounces@news.example.org")


def test_deterministic() -> None:
    key = new_subscriber_key()
    assert verp_address(SECRET, "b@x.org", 7, key) == verp_address(SECRET, "b@x.org", 7, key)


def test_survives_case_folding_and_brackets() -> None:
    key = new_subscriber_key()
    address = verp_address(SECRET, "bounces@news.example.org", 3, key)
    assert read_verp(SECRET, f"<{address.upper()}>") == (3, key, MailKind.CAMPAIGN)


@given(campaign_id=st.integers(min_value=0, max_value=2**40),
       key=st.one_of(st.just("").map(lambda _: new_subscriber_key()),
                     st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)))
def test_round_trip_property(campaign_id: int, key: str) -> None:
    address = verp_address(SECRET, "b@example.org", campaign_id, key)
    assert read_verp(SECRET, address) == (campaign_id, key, MailKind.CAMPAIGN)


def test_every_tampered_character_is_refused() -> None:
    address = verp_address(SECRET, "bounces@news.example.org", 42, new_subscriber_key())
    local, _, domain = address.partition("@")
    prefix, _, ref = local.partition("+")
    for i, char in enumerate(ref):
        for other in ("a", "7"):
            if other == char:
                continue
            forged = f"{prefix}+{ref[:i]}{other}{ref[i + 1:]}@{domain}"
            with pytest.raises(InvalidVerp):
                read_verp(SECRET, forged)


@pytest.mark.parametrize("address", [
    "bounces@news.example.org", "bounces+@news.example.org", "bounces+abc@news.example.org",
    "bounces+!!!@news.example.org", "", "nonsense",
])
def test_not_verp_is_refused(address: str) -> None:
    with pytest.raises(InvalidVerp) as info:
        read_verp(SECRET, address)
    assert isinstance(info.value, NewsletterError)


def test_other_secret_is_refused() -> None:
    address = verp_address(SECRET, "bounces@news.example.org", 42, new_subscriber_key())
    with pytest.raises(InvalidVerp):
        read_verp(b"another-secret-entirely-0123456789", address)


def test_too_long_local_part_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter bounce address"):
        verp_address(SECRET, "a-very-long-bounce-mailbox-name-indeed@example.org", 1, new_subscriber_key())
    with pytest.raises(ValueError):
        verp_address(SECRET, "no-domain", 1, "k")


def test_padding_bits_cannot_respell_a_reference() -> None:
    """Base32's unused final bits are refused when set: one reference has exactly one spelling."""
    for _ in range(20):
        address = verp_address(SECRET, "bounces@news.example.org", 9, new_subscriber_key())
        local, _, domain = address.partition("@")
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        last = alphabet.index(local[-1])
        respelled = f"{local[:-1]}{alphabet[last ^ 1]}@{domain}"
        with pytest.raises(InvalidVerp):
            read_verp(SECRET, respelled)


def test_envelope_sender_follows_the_configuration() -> None:
    from newsletter.config import Config

    config = Config(secret_key=SECRET.decode(), from_address="news@example.org")
    key = new_subscriber_key()
    assert Postmark.from_config(config, SECRET).return_path(MailKind.CAMPAIGN, key, 5) == "news@example.org"
    postmark = Postmark.from_config(config.with_changes(bounce_address="bounces@news.example.org"), SECRET)
    assert read_verp(SECRET, postmark.return_path(MailKind.CAMPAIGN, key, 5)) == (5, key, MailKind.CAMPAIGN)
    with pytest.raises(ValueError, match="secret"):
        Postmark.from_config(config.with_changes(bounce_address="bounces@news.example.org")).return_path(
            MailKind.CONFIRMATION, key)


@pytest.mark.parametrize("kind", [k for k in MailKind if k is not MailKind.CAMPAIGN])
@pytest.mark.parametrize("campaign_id", [None, 0, 7, 2**33])
def test_every_kind_of_mail_has_a_reference_that_reads_back(kind: MailKind, campaign_id: int | None) -> None:
    """A confirmation (or a welcome, a catch-up, a test send) belongs to no campaign, or to one."""
    key = new_subscriber_key() if kind is not MailKind.TEST else ""
    address = verp_address(SECRET, "bounces@news.example.org", campaign_id, key, kind=kind)
    assert len(address.partition("@")[0]) <= MAX_LOCAL_PART
    assert read_verp(SECRET, address.upper()) == VerpReference(campaign_id, key, kind)
    campaign = verp_address(SECRET, "bounces@news.example.org", campaign_id or 0, key)
    assert address != campaign and read_verp(SECRET, campaign).kind is MailKind.CAMPAIGN


def test_a_campaign_reference_needs_its_campaign() -> None:
    with pytest.raises(ValueError, match="campaign_id"):
        verp_address(SECRET, "bounces@news.example.org", None, new_subscriber_key())


def test_references_made_before_kinds_still_read() -> None:
    """Version 1 references (campaign id, key), written before mails of other kinds had any."""
    # What verp_address(SECRET, "bounces@news.example.org", 42, "k3y-of-someone") gave before kinds.
    address = "bounces+rm3bye72bjajf6jqub3qqna2jmsyvwgv33yqc7i@news.example.org"
    assert verp_address(SECRET, "bounces@news.example.org", 42, "k3y-of-someone") == address
    assert read_verp(SECRET, address) == (42, "k3y-of-someone", MailKind.CAMPAIGN)
