"""Routing, argument decoding by type hint, result encoding and GetMetadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from shim_testkit import FakePeer

from chaincode.shim import Context, Contract, InvalidArgumentError, Router, transaction
from chaincode.shim.codec import decode_argument, encode_result

GOOD_TYPED = [
    "7",
    "2",
    "true",
    '["a","b"]',
    '{"x":1,"y":2}',
    '{"a":1}',
    "\x00\xff",
    "null",
    '{"key":"k","count":3}',
]


async def test_default_and_qualified_routing(peer: FakePeer) -> None:
    peer.state[("", "k")] = b"v"
    # Probe is the first contract, so unqualified names go to it.
    assert (await peer.invoke(["Get", "k"])).payload == b"v"
    assert (await peer.invoke(["Probe:Get", "k"])).payload == b"v"
    assert (await peer.invoke(["Other:Ping"])).payload == b"pong"
    out = await peer.invoke(["Ping"])
    assert (out.status, out.text) == (500, "unknown transaction 'Ping'")
    out = await peer.invoke(["Nope:Ping"])
    assert (out.status, out.text) == (500, "unknown contract 'Nope'")
    out = await peer.invoke([])
    assert out.status == 500 and "no transaction name" in out.text


async def test_arguments_decode_by_type_hint(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Typed", *GOOD_TYPED])
    assert out.status == 200, out.text
    assert out.json() == {
        "n": 7,
        "f": 2.0,
        "b": True,
        "items": ["a", "b"],
        "point": {"x": 1, "y": 2, "label": ""},
        "counts": {"a": 1},
        "raw": "00c3bf",
        "opt": None,
        "pair": {"key": "k", "count": 3},
    }
    # Results are compact JSON.
    assert b", " not in out.payload and b": " not in out.payload


@pytest.mark.parametrize(
    ("index", "bad", "expected"),
    [
        (0, "abc", "invalid argument n: expected JSON for int"),
        (0, "1.5", "invalid argument n: expected int"),
        (0, "true", "invalid argument n: expected int"),
        (2, "1", "invalid argument b: expected bool"),
        (3, '["a",1]', "invalid argument items[1]: expected str"),
        (4, '{"x":1}', "invalid argument point: Point is missing field(s) y"),
        (4, '{"x":1,"y":2,"z":3}', "invalid argument point: Point has unknown field(s) z"),
        (4, '{"x":"1","y":2}', "invalid argument point.x: expected int"),
        (5, '{"a":"1"}', "invalid argument counts.a: expected int"),
        (7, '"x"', "invalid argument opt: expected int | None"),
        (8, '{"key":"k"}', "invalid argument pair: Pair is missing field(s) count"),
    ],
)
async def test_argument_errors_are_clean_500s(
    peer: FakePeer, index: int, bad: str, expected: str
) -> None:
    args = list(GOOD_TYPED)
    args[index] = bad
    out = await peer.invoke(["Probe:Typed", *args])
    assert (out.status, out.text) == (500, expected)


async def test_argument_count_and_utf8_errors(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Put", "only-one"])
    assert (out.status, out.text) == (500, "invalid argument count for Put: expected 2, got 1")
    out = await peer.invoke([b"Probe:Put", b"k", b"\xff\xfe"])
    assert (out.status, out.text) == (500, "invalid argument value: not valid UTF-8")


async def test_get_metadata(peer: FakePeer) -> None:
    out = await peer.invoke(["org.hyperledger.fabric:GetMetadata"])
    assert out.status == 200
    metadata = out.json()
    contracts = metadata["contracts"]
    assert set(contracts) == {"Probe", "Other", "AssetContract", "org.hyperledger.fabric"}
    assert contracts["Probe"]["default"] is True
    txs = {tx["name"]: tx for tx in contracts["AssetContract"]["transactions"]}
    assert txs["CreateAsset"]["tag"] == ["submit"]
    assert txs["ReadAsset"]["tag"] == ["evaluate"]
    assert txs["CreateAsset"]["parameters"] == [
        {"name": "id", "schema": {"type": "string"}},
        {"name": "color", "schema": {"type": "string"}},
        {"name": "size", "schema": {"type": "integer", "format": "int64"}},
        {"name": "owner", "schema": {"type": "string"}},
        {"name": "appraisedValue", "schema": {"type": "integer", "format": "int64"}},
    ]
    assert txs["ReadAsset"]["returns"] == {"$ref": "#/components/schemas/Asset"}
    asset = metadata["components"]["schemas"]["Asset"]
    assert asset["required"] == ["AppraisedValue", "Color", "ID", "Owner", "Size"]
    assert txs["SetKeyEndorsement"]["parameters"][1]["schema"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    probe = {tx["name"]: tx for tx in contracts["Probe"]["transactions"]}
    assert probe["Typed"]["parameters"][6]["schema"] == {"type": "string", "format": "byte"}
    out = await peer.invoke(["org.hyperledger.fabric:Nope"])
    assert out.status == 500


def test_router_rejects_bad_contract_sets() -> None:
    class Dup(Contract):
        name = "Other"

    class Other(Contract):
        pass

    with pytest.raises(ValueError, match="duplicated"):
        Router([Dup(), Other()])
    with pytest.raises(ValueError, match="at least one"):
        Router([])


def test_transaction_must_be_async_and_typed() -> None:
    with pytest.raises(TypeError, match="async"):

        class Sync(Contract):
            @transaction()  # type: ignore[type-var]
            def Tx(self, ctx: Context) -> None:
                return None

    class Untyped(Contract):
        @transaction()
        async def Tx(self, ctx: Context, value) -> None:  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(TypeError, match="needs a type"):
        Router([Untyped()])


def test_custom_context_and_unknown_hook() -> None:
    class MyContext(Context):
        def __init__(self, stub: Any) -> None:
            super().__init__(stub)
            self.extra = "field"

    class Custom(Contract):
        def create_context(self, stub: Any) -> Context:
            return MyContext(stub)

        async def unknown_transaction(self, ctx: Context, function: str) -> Any:
            assert isinstance(ctx, MyContext)
            return {"fallback": function, "extra": ctx.extra}

    class FakeStub:
        tx_id = "t"

        def get_args(self) -> list[bytes]:
            return [b"Whatever"]

    import asyncio

    response = asyncio.run(Router([Custom()]).invoke(FakeStub()))  # type: ignore[arg-type]
    assert response.status == 200
    assert json.loads(response.payload) == {"fallback": "Whatever", "extra": "field"}


@dataclass
class Inner:
    v: list[int]


def test_codec_edge_cases() -> None:
    assert decode_argument(b"3", float, "f") == 3.0
    assert decode_argument(b'"b"', Literal["a", "b"], "l") == "b"
    with pytest.raises(InvalidArgumentError):
        decode_argument(b'"c"', Literal["a", "b"], "l")
    assert decode_argument(b"[1,2]", tuple[int, ...], "t") == (1, 2)
    assert decode_argument(b'[1,"x"]', tuple[int, str], "t") == (1, "x")
    with pytest.raises(InvalidArgumentError):
        decode_argument(b"[1]", tuple[int, str], "t")
    assert decode_argument(b'{"v":[1]}', Inner, "i") == Inner([1])
    assert decode_argument(b'{"any":[1]}', dict, "d") == {"any": [1]}
    with pytest.raises(InvalidArgumentError, match="unsupported type"):
        decode_argument(b"1", complex, "c")
    assert encode_result(None) == b""
    assert encode_result(b"\x00") == b"\x00"
    assert encode_result("é") == "é".encode()
    assert encode_result(Inner([1])) == b'{"v":[1]}'
    assert encode_result({"a": (1, 2)}) == b'{"a":[1,2]}'
    assert encode_result(False) == b"false"
