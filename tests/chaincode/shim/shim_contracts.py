"""Contracts that drive every stub feature from inside a transaction, for the shim tests."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, TypedDict

from chaincode.shim import (
    Context,
    Contract,
    ContractError,
    KeyEndorsementPolicy,
    PeerError,
    RoleType,
    transaction,
)

log = logging.getLogger("tests.shim.contract")


@dataclass
class Point:
    x: int
    y: int
    label: str = ""


class Pair(TypedDict):
    key: str
    count: int


def _pairs(items: list[tuple[str, bytes]]) -> list[list[str]]:
    return [[k, v.decode()] for k, v in items]


class Probe(Contract):
    name = "Probe"

    @transaction()
    async def Put(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @transaction(read_only=True)
    async def Get(self, ctx: Context, key: str) -> bytes | None:
        return await ctx.stub.get_state(key)

    @transaction()
    async def Del(self, ctx: Context, key: str) -> None:
        await ctx.stub.del_state(key)

    @transaction()
    async def PutEmptyKey(self, ctx: Context) -> None:
        await ctx.stub.put_state("", b"x")

    @transaction()
    async def DelEmptyKey(self, ctx: Context) -> None:
        await ctx.stub.del_state("")

    @transaction(read_only=True)
    async def Range(self, ctx: Context, start: str, end: str) -> list[list[str]]:
        return _pairs(await ctx.stub.get_state_by_range(start, end).collect())

    @transaction(read_only=True)
    async def RangeFirst(self, ctx: Context, start: str, end: str, n: int) -> list[str]:
        seen = []
        async with ctx.stub.get_state_by_range(start, end) as results:
            async for key, _value in results:
                seen.append(key)
                if len(seen) == n:
                    break
        return seen

    @transaction(read_only=True)
    async def RangePage(
        self, ctx: Context, start: str, end: str, page_size: int, bookmark: str
    ) -> dict[str, Any]:
        page = await ctx.stub.get_state_by_range_with_pagination(start, end, page_size, bookmark)
        return {
            "results": _pairs(page.results),
            "bookmark": page.bookmark,
            "count": page.fetched_records_count,
        }

    @transaction()
    async def PutComposite(
        self, ctx: Context, object_type: str, attrs: list[str], value: str
    ) -> str:
        key = ctx.stub.create_composite_key(object_type, attrs)
        await ctx.stub.put_state(key, value.encode())
        return key

    @transaction(read_only=True)
    async def Partial(self, ctx: Context, object_type: str, attrs: list[str]) -> list[Any]:
        out = []
        async for key, value in ctx.stub.get_state_by_partial_composite_key(object_type, attrs):
            kind, parts = ctx.stub.split_composite_key(key)
            out.append([kind, parts, value.decode()])
        return out

    @transaction(read_only=True)
    async def PartialPage(
        self, ctx: Context, object_type: str, attrs: list[str], page_size: int, bookmark: str
    ) -> dict[str, Any]:
        page = await ctx.stub.get_state_by_partial_composite_key_with_pagination(
            object_type, attrs, page_size, bookmark
        )
        return {
            "keys": [ctx.stub.split_composite_key(k)[1] for k, _ in page.results],
            "bookmark": page.bookmark,
        }

    @transaction()
    async def PutPrivate(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.put_private_data(collection, key, ctx.stub.get_transient()["value"])

    @transaction(read_only=True)
    async def GetPrivate(self, ctx: Context, collection: str, key: str) -> bytes | None:
        return await ctx.stub.get_private_data(collection, key)

    @transaction(read_only=True)
    async def GetPrivateHash(self, ctx: Context, collection: str, key: str) -> str | None:
        digest = await ctx.stub.get_private_data_hash(collection, key)
        return digest.hex() if digest is not None else None

    @transaction()
    async def DelPrivate(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.del_private_data(collection, key)

    @transaction()
    async def PurgePrivate(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.purge_private_data(collection, key)

    @transaction(read_only=True)
    async def PrivateRange(
        self, ctx: Context, collection: str, start: str, end: str
    ) -> list[list[str]]:
        return _pairs(await ctx.stub.get_private_data_by_range(collection, start, end).collect())

    @transaction(read_only=True)
    async def PrivatePartial(
        self, ctx: Context, collection: str, object_type: str, attrs: list[str]
    ) -> list[list[str]]:
        iterator = ctx.stub.get_private_data_by_partial_composite_key(
            collection, object_type, attrs
        )
        return [ctx.stub.split_composite_key(k)[1] async for k, _ in iterator]

    @transaction()
    async def EmptyCollection(self, ctx: Context) -> None:
        await ctx.stub.get_private_data("", "k")

    @transaction()
    async def SetEP(self, ctx: Context, key: str, orgs: list[str]) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs(RoleType.PEER, *orgs)
        await ctx.stub.set_state_validation_parameter(key, policy.policy())

    @transaction(read_only=True)
    async def GetEP(self, ctx: Context, key: str) -> list[str] | None:
        raw = await ctx.stub.get_state_validation_parameter(key)
        return KeyEndorsementPolicy(raw).list_orgs() if raw is not None else None

    @transaction()
    async def SetPrivateEP(self, ctx: Context, collection: str, key: str, orgs: list[str]) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs(RoleType.MEMBER, *orgs)
        await ctx.stub.set_private_data_validation_parameter(collection, key, policy.policy())

    @transaction(read_only=True)
    async def GetPrivateEP(self, ctx: Context, collection: str, key: str) -> list[str] | None:
        raw = await ctx.stub.get_private_data_validation_parameter(collection, key)
        return KeyEndorsementPolicy(raw).list_orgs() if raw is not None else None

    @transaction()
    async def Event(self, ctx: Context, name: str, payload: bytes) -> None:
        ctx.stub.set_event(name, payload)

    @transaction(read_only=True)
    async def Facts(self, ctx: Context) -> dict[str, Any]:
        stub = ctx.stub
        ts = stub.get_tx_timestamp()
        function, params = stub.get_function_and_parameters()
        signed = stub.get_signed_proposal()
        return {
            "txid": stub.tx_id,
            "channel": stub.channel_id,
            "seconds": ts.seconds,
            "nanos": ts.nanos,
            "iso": stub.get_tx_datetime().isoformat(),
            "binding": stub.get_binding().hex(),
            "creator": stub.get_creator().hex(),
            "transient": sorted(stub.get_transient()),
            "function": function,
            "params": params,
            "proposal_len": len(signed.proposal_bytes) if signed is not None else 0,
        }

    @transaction(read_only=True)
    async def Who(self, ctx: Context) -> dict[str, Any]:
        identity = ctx.client_identity
        return {
            "msp": identity.get_msp_id(),
            "id": identity.get_id(),
            "id_string": identity.get_id_string(),
            "role": identity.get_attribute_value("mip.role"),
            "missing": identity.get_attribute_value("nope"),
            "node_ou": identity.get_node_ou(),
        }

    @transaction(read_only=True)
    async def CatchPeerError(self, ctx: Context, key: str) -> dict[str, str]:
        try:
            await ctx.stub.get_state(key)
        except PeerError as exc:
            return {"error": type(exc).__name__, "message": str(exc)}
        return {"error": ""}

    @transaction(read_only=True)
    async def Boom(self, ctx: Context, secret: str) -> None:
        raise RuntimeError(f"leaked {secret}")

    @transaction(read_only=True)
    async def Fail(self, ctx: Context, message: str) -> None:
        raise ContractError(message, status=404 if message == "404" else 500)

    @transaction(read_only=True)
    async def Typed(
        self,
        ctx: Context,
        n: int,
        f: float,
        b: bool,
        items: list[str],
        point: Point,
        counts: dict[str, int],
        raw: bytes,
        opt: int | None,
        pair: Pair,
    ) -> dict[str, Any]:
        return {
            "n": n,
            "f": f,
            "b": b,
            "items": items,
            "point": point,
            "counts": counts,
            "raw": raw.hex(),
            "opt": opt,
            "pair": pair,
        }

    @transaction()
    async def Increment(self, ctx: Context, key: str, delay_ms: int) -> int:
        raw = await ctx.stub.get_state(key)
        await asyncio.sleep(delay_ms / 1000)
        value = int(raw or b"0") + 1
        await ctx.stub.put_state(key, str(value).encode())
        return value

    @transaction(read_only=True)
    async def Gather(self, ctx: Context, a: str, b: str) -> list[str | None]:
        values = await asyncio.gather(ctx.stub.get_state(a), ctx.stub.get_state(b))
        return [v.decode() if v is not None else None for v in values]

    @transaction()
    async def Chatty(self, ctx: Context, key: str) -> int:
        """Logs (without values) while reading state and transient data."""
        log.info("Chatty reading a key")
        value = await ctx.stub.get_state(key)
        secret = ctx.stub.get_transient().get("secret", b"")
        log.debug("Chatty read %d bytes and a %d-byte transient", len(value or b""), len(secret))
        await ctx.stub.put_state(key + "-copy", (value or b"") + secret)
        return len(secret)

    @transaction(read_only=True)
    async def History(self, ctx: Context, key: str) -> list[list[Any]]:
        return [
            [m.tx_id, m.value.decode(), m.is_delete]
            async for m in ctx.stub.get_history_for_key(key)
        ]

    @transaction(read_only=True)
    async def Rich(self, ctx: Context, query: str) -> list[list[str]]:
        return _pairs(await ctx.stub.get_query_result(query).collect())

    @transaction()
    async def Call(self, ctx: Context, name: str, channel: str, args: list[str]) -> list[Any]:
        status, message, payload = await ctx.stub.invoke_chaincode(
            name, [a.encode() for a in args], channel
        )
        return [status, message, payload.decode()]


class Other(Contract):
    @transaction(read_only=True)
    async def Ping(self, ctx: Context) -> str:
        return "pong"
