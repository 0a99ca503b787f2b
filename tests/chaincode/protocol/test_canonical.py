"""Canonical JSON is RFC 8785 and gives the bytes MIP signed and hashed before it was.

The contract verifies holder signatures and content hashes over canonical bytes, so a change
of one byte would break every stored signature and hash. The form before `rfc8785` was
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`: for every document of
the kind MIP signs (string keys without characters above U+D7FF, integers, strings of any
character, lists, objects) both must give the same bytes; the two documented differences are
pinned here too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincode.protocol.canonical import NotCanonicalizable, canonical_json

SAFE_INT = 2**53 - 1


def former_canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# Keys as MIP's documents have them can be any text below the surrogates; values any text.
keys = st.text(alphabet=st.characters(max_codepoint=0xD7FF), max_size=8)
scalars = (st.none() | st.booleans() | st.integers(-SAFE_INT, SAFE_INT)
           | st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_same_bytes_as_the_former_form(document: Any) -> None:
    assert canonical_json(document) == former_canonical_json(document)


def test_representative_payloads_keep_their_bytes() -> None:
    # A holder request envelope, a credential's content and an attestation payload as the
    # gateway builds them; their digests were taken with the former form.
    envelope = {"action": "grant.create", "channel": "mipchannel", "expires": 1_790_000_000,
                "nonce": "0123456789abcdef", "signer": "A" * 43 + "=",
                "body": {"scope": "medical.prescription", "grantee_org": "PharmacyMSP",
                         "credential_id": "rx-1", "expires": 1_790_000_600}}
    content = {"drug": "Amoxicillin 500 mg «Ø»", "strength": "500mg", "quantity": 21,
               "refills": 0, "prescriber": "Dr. Ngô\n\"Bảo\"", "expiry": 1_800_000_000}
    courses = {"courses": [{"course": "Maths\t1", "grade": "A"}, {"course": "中文", "grade": "B"}]}
    for document in (envelope, content, courses):
        assert canonical_json(document) == former_canonical_json(document)
    assert hashlib.sha256(canonical_json(envelope)).hexdigest() == hashlib.sha256(
        former_canonical_json(envelope)).hexdigest()


def test_keys_are_ordered_by_utf16_as_rfc8785_says() -> None:
    # The one ordering difference: U+1F600 is D83D DE00 in UTF-16, before U+FFFD.
    document = {"\U0001F600": 1, "\uFFFD": 2}
    assert canonical_json(document) == '{"\U0001F600":1,"\uFFFD":2}'.encode()
    assert former_canonical_json(document) != canonical_json(document)


@pytest.mark.parametrize("value", [
    1.5, {"a": [0.0]}, 2**53, -(2**53), {1: "x"}, "\ud800", {"a": b"bytes"}, {"a": {1, 2}},
])
def test_no_canonical_form_is_a_value_error(value: Any) -> None:
    with pytest.raises(NotCanonicalizable):
        canonical_json(value)
    assert issubclass(NotCanonicalizable, ValueError)
