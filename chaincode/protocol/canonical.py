"""Canonical JSON: the exact bytes that holders sign and that hashes are computed over.

The bytes are RFC 8785's JSON Canonicalization Scheme (the `rfc8785` library): keys sorted,
no whitespace, UTF-8, JSON's short escapes. For every document MIP signs or hashes this is the
byte-for-byte output of the hand-written form it replaced (`json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`), so signatures, hashes and sealed data made
before keep verifying (tests/chaincode/protocol/test_canonical.py compares the two). The
two differ only where MIP's documents never go, and there RFC 8785 is the one other
languages reproduce:

- keys are ordered by UTF-16 code units, not code points, which changes the order only
  between a key with a character above U+FFFF and one with a character in U+E000..U+FFFF
  (MIP's keys are fixed ASCII field names);
- integers outside +-(2**53 - 1), which JavaScript and many JSON parsers cannot hold
  exactly, are refused instead of written.

Floats stay refused although RFC 8785 defines their form: MIP's signed and hashed documents
carry integers and strings only (amounts in micro-units, times in whole seconds), and a float
in one is a client error that must be reported, not rounded into a signature.
"""

from __future__ import annotations

from typing import Any

import rfc8785


class NotCanonicalizable(ValueError):
    """A value that has no canonical form here (a float, a non-string key, a huge integer,
    a lone surrogate, or a type JSON lacks)."""


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise NotCanonicalizable("floats are not allowed in signed or hashed documents")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _reject_floats(item)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of `value`, which must hold no floats.

    Raises NotCanonicalizable (a ValueError) for what has no canonical form."""
    _reject_floats(value)
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise NotCanonicalizable(str(exc)) from None
