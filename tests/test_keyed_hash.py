"""`KeyedHash` is HMAC: the same digests as the standard library's, whatever the key's length."""

from __future__ import annotations

import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.keyed_hash import KeyedHash


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), prefix=st.binary(max_size=80), messages=st.lists(st.binary(max_size=300), max_size=4),
       name=st.sampled_from(["sha1", "sha256"]))
def test_the_digest_is_hmac_of_the_prefix_and_the_message(key, prefix, messages, name):
    keyed = KeyedHash(key, name, prefix)
    for message in messages:  # the keyed states are reused, never changed
        assert keyed.digest(message) == hmac.digest(key, prefix + message, name)
        assert keyed.hexdigest(message) == hmac.new(key, prefix + message, name).hexdigest()
