"""Transaction arguments and results: decoding by type hint, encoding, JSON schema.

An argument arrives as bytes. `str` is UTF-8, `bytes` is raw, every other type is JSON
checked against the hint (int, float, bool, None, list[T], dict[str, T], tuple, Literal,
unions/Optional, dataclasses, TypedDicts, Any). A mismatch raises `InvalidArgumentError`
naming the parameter and the expected type, never echoing the value.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from chaincode.shim.errors import InvalidArgumentError

_JSON_SEPARATORS = (",", ":")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and get_origin(tp) is None:
        return tp.__name__
    return str(tp).replace("typing.", "")


def _fail(path: str, tp: Any) -> InvalidArgumentError:
    return InvalidArgumentError(f"invalid argument {path}: expected {_type_name(tp)}")


def _is_union(origin: Any) -> bool:
    return origin is Union or origin is types.UnionType


def convert(value: Any, tp: Any, path: str) -> Any:
    """Check a JSON-decoded `value` against `tp`, building dataclasses where asked."""
    if tp is Any or tp is object:
        return value
    if tp is type(None) or tp is None:
        if value is None:
            return None
        raise _fail(path, tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(path, tp)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _fail(path, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(path, tp)
    origin = get_origin(tp)
    args = get_args(tp)
    if _is_union(origin):
        for option in args:
            try:
                return convert(value, option, path)
            except InvalidArgumentError:
                continue
        raise _fail(path, tp)
    if origin is Literal:
        if any(value == option and type(value) is type(option) for option in args):
            return value
        raise _fail(path, tp)
    if tp is list or origin is list:
        if not isinstance(value, list):
            raise _fail(path, tp)
        item_type = args[0] if args else Any
        return [convert(item, item_type, f"{path}[{i}]") for i, item in enumerate(value)]
    if tp is tuple or origin is tuple:
        if not isinstance(value, list):
            raise _fail(path, tp)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise _fail(path, tp)
        return tuple(
            convert(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(value, args, strict=True))
        )
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, tp)
        value_type = args[1] if args else Any
        return {k: convert(v, value_type, f"{path}.{k}") for k, v in value.items()}
    if is_typeddict(tp):
        if not isinstance(value, dict):
            raise _fail(path, tp)
        hints = get_type_hints(tp)
        _check_keys(value, hints.keys(), tp.__required_keys__, path, tp)
        return {k: convert(v, hints[k], f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _fail(path, tp)
        hints = get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        required = {
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        _check_keys(value, fields.keys(), required, path, tp)
        return tp(**{k: convert(v, hints[k], f"{path}.{k}") for k, v in value.items()})
    raise InvalidArgumentError(f"invalid argument {path}: unsupported type {_type_name(tp)}")


def _check_keys(
    value: dict[str, Any],
    allowed: typing.Iterable[str],
    required: typing.Iterable[str],
    path: str,
    tp: Any,
) -> None:
    allowed_set = set(allowed)
    missing = sorted(set(required) - value.keys())
    unknown = sorted(k for k in value if k not in allowed_set)
    if missing:
        raise InvalidArgumentError(
            f"invalid argument {path}: {_type_name(tp)} is missing field(s) {', '.join(missing)}"
        )
    if unknown:
        raise InvalidArgumentError(
            f"invalid argument {path}: {_type_name(tp)} has unknown field(s) {', '.join(unknown)}"
        )


def decode_argument(raw: bytes, tp: Any, name: str) -> Any:
    """One transaction argument, from its wire bytes to the hinted Python type."""
    if tp is bytes:
        return raw
    if tp is str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"invalid argument {name}: not valid UTF-8") from None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgumentError(
            f"invalid argument {name}: expected JSON for {_type_name(tp)}"
        ) from None
    return convert(value, tp, name)


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Shallow: json calls back here for nested dataclasses, avoiding asdict's deep copy.
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_result(value: Any) -> bytes:
    """None -> empty, bytes -> raw, str -> UTF-8, anything else -> compact JSON."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=_JSON_SEPARATORS, default=_to_json).encode("utf-8")


def json_schema(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema for `tp`; dataclasses and TypedDicts go to `components` by name."""
    if tp is str:
        return {"type": "string"}
    if tp is bytes:
        return {"type": "string", "format": "byte"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer", "format": "int64"}
    if tp is float:
        return {"type": "number", "format": "double"}
    if tp is type(None) or tp is None:
        return {"type": "null"}
    if tp is Any or tp is object:
        return {}
    origin = get_origin(tp)
    args = get_args(tp)
    if _is_union(origin):
        return {"anyOf": [json_schema(option, components) for option in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if tp is list or origin is list or tp is tuple or origin is tuple:
        item = args[0] if args else Any
        return {"type": "array", "items": json_schema(item, components)}
    if tp is dict or origin is dict:
        value_type = args[1] if args else Any
        return {"type": "object", "additionalProperties": json_schema(value_type, components)}
    if is_typeddict(tp) or (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
        name = tp.__name__
        if name not in components:
            components[name] = {}  # placeholder first, so recursive types terminate
            hints = get_type_hints(tp)
            if is_typeddict(tp):
                required = sorted(tp.__required_keys__)
            else:
                required = [
                    f.name
                    for f in dataclasses.fields(tp)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                ]
            components[name] = {
                "$id": name,
                "type": "object",
                "properties": {k: json_schema(v, components) for k, v in hints.items()},
                "required": required,
                "additionalProperties": False,
            }
        return {"$ref": f"#/components/schemas/{name}"}
    return {"type": "string", "description": _type_name(tp)}
