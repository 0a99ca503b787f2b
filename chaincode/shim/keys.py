"""Fabric's composite keys and the key checks the Go shim applies before calling the peer."""

from __future__ import annotations

from chaincode.shim.errors import EmptyKeyError, InvalidCompositeKeyError, InvalidKeyError

MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"
COMPOSITE_KEY_NAMESPACE = "\x00"
# Fabric substitutes an empty range start with \x01 so the range skips composite keys.
EMPTY_KEY_SUBSTITUTE = "\x01"


def _validate_attribute(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCompositeKeyError("not a valid utf8 string") from None
    for index, char in enumerate(value):
        if char in (MIN_UNICODE_RUNE, MAX_UNICODE_RUNE):
            raise InvalidCompositeKeyError(
                f"input contains unicode U+{ord(char):04X} starting at position [{index}]. "
                "U+0000 and U+10FFFF are not allowed in the input attribute of a composite key"
            )


def create_composite_key(object_type: str, attributes: list[str]) -> str:
    """`\\x00objectType\\x00attr1\\x00attr2\\x00...`, exactly as Go's CreateCompositeKey."""
    _validate_attribute(object_type)
    parts = [COMPOSITE_KEY_NAMESPACE, object_type, MIN_UNICODE_RUNE]
    for attribute in attributes:
        _validate_attribute(attribute)
        parts.append(attribute)
        parts.append(MIN_UNICODE_RUNE)
    return "".join(parts)


def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
    """Inverse of `create_composite_key`: (object type, attributes)."""
    if (
        len(composite_key) < 2
        or composite_key[0] != COMPOSITE_KEY_NAMESPACE
        or composite_key[-1] != MIN_UNICODE_RUNE
    ):
        raise InvalidCompositeKeyError("not a composite key")
    components = composite_key[1:-1].split(MIN_UNICODE_RUNE)
    return components[0], components[1:]


def partial_composite_key_range(object_type: str, attributes: list[str]) -> tuple[str, str]:
    """The [start, end) range covering every key that extends the partial composite key."""
    start = create_composite_key(object_type, attributes)
    return start, start + MAX_UNICODE_RUNE


def validate_simple_keys(*keys: str) -> None:
    """Range bounds of simple (non-composite) queries must not start with \\x00."""
    for key in keys:
        if key and key[0] == COMPOSITE_KEY_NAMESPACE:
            raise InvalidKeyError(
                "first character of the key contains a null character which is not allowed"
            )


def validate_write_key(key: str) -> None:
    """PutState/DelState refuse an empty key (Fabric: "key must not be an empty string")."""
    if not key:
        raise EmptyKeyError("key must not be an empty string")
