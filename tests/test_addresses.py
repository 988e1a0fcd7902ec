"""Address normalisation: the fast path for plain addresses agrees with email-validator."""

from __future__ import annotations

import string

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsletter.addresses import _plain_address, canonical_mailbox, normalise_address
from newsletter.errors import InvalidAddress


def oracle(text: str) -> str | None:
    """What email-validator alone says: the normalised address, or None if invalid."""
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-."
LABEL = string.ascii_letters + string.digits + "-"
local_parts = st.text(ATEXT, min_size=1, max_size=70)
labels = st.text(LABEL, min_size=1, max_size=66)
tlds = st.one_of(st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=8),
                 st.sampled_from(["org", "net", "com", "test", "local", "localhost", "arpa", "onion", "invalid"]))
domains = st.builds(lambda parts, tld: ".".join([*parts, tld]), st.lists(labels, min_size=0, max_size=4), tlds)
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


@settings(max_examples=1000, deadline=None)
@given(addresses)
@example("a..b@example.org")
@example(".a@example.org")
@example("a.@example.org")
@example("a@-example.org")
@example("a@example-.org")
@example("a@xn--bcher-kva.example")
@example("a@ab--cd.org")
@example("a@example.123")
@example("a@localhost")
@example("a@mail.local")
@example("x@" + "a" * 63 + ".org")
@example("x@" + "a" * 64 + ".org")
@example("a" * 64 + "@example.org")
@example("a" * 65 + "@example.org")
@example("Postmaster@Example.ORG")
def test_fast_path_never_disagrees_with_email_validator(address):
    fast = _plain_address(address)
    if fast is not None:
        assert fast == oracle(address), address


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gets_email_validators_answer(text):
    expected = oracle(text.strip()) if text.strip() else None
    try:
        got = normalise_address(text)
    except InvalidAddress:
        got = None
    assert got == expected


ALNUM = string.ascii_letters + string.digits
well_formed = st.builds(
    lambda words, labels, tld: f"{'.'.join(words)}@{'.'.join(labels)}.{tld}",
    st.lists(st.text(ALNUM + "+_-'", min_size=1, max_size=12), min_size=1, max_size=3),
    st.lists(st.builds(lambda a, b: a + b, st.text(ALNUM, min_size=1, max_size=10), st.text(ALNUM + "-", max_size=5)
                       .map(lambda t: t.rstrip("-"))), min_size=1, max_size=3),
    st.text(string.ascii_letters, min_size=2, max_size=6),
)


@settings(max_examples=800, deadline=None)
@given(well_formed)
def test_well_formed_addresses_agree_on_the_fast_path(address):
    fast = _plain_address(address)
    if fast is not None:
        assert fast == oracle(address), address
    else:  # only IDNA-looking labels and special-use names are left to the library
        assert "--" in address.split("@")[1] or oracle(address) is None or address.lower().endswith(
            (".local", ".test", ".arpa", ".onion", ".invalid", ".localhost"))


@pytest.mark.parametrize("address", ["ana.ruiz@example.org", "O'Brien+asp@Mail.Example.NET", "x_y-z@sub.example.co"])
def test_plain_addresses_take_the_fast_path(address):
    assert _plain_address(address) == oracle(address)


@pytest.mark.parametrize("address", ["josé@example.org", '"quoted"@example.org', "a@[192.0.2.1]", "a@bücher.example"])
def test_other_addresses_go_to_email_validator(address):
    assert _plain_address(address) is None


@pytest.mark.parametrize("address, mailbox", [
    ("ana@example.org", "ana@example.org"),
    ("ana+news@example.org", "ana@example.org"),
    ("ana+a+b@example.org", "ana@example.org"),
    ("+tag@example.org", "+tag@example.org"),  # no mailbox name before the tag: left alone
    ("a.n.a@example.org", "a.n.a@example.org"),  # dots matter outside Gmail
    ("a.n.a+x@gmail.com", "ana@gmail.com"),
    ("Ana.R@GoogleMail.com", "anar@gmail.com"),
])
def test_the_canonical_mailbox_drops_the_tag_and_gmails_dots(address, mailbox):
    assert canonical_mailbox(address) == mailbox
