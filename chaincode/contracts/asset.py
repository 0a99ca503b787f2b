"""asset-transfer-basic (fabric-samples semantics) plus transactions that exercise the stub.

The asset part is what benchmarks and ledger tests drive; the extra transactions (private
data, key-level endorsement, events, paginated range queries, caller identity) let devnet
tests reach every stub feature through a real Gateway submit/evaluate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypedDict

from chaincode.shim import Context, Contract, ContractError, KeyEndorsementPolicy, transaction
from chaincode.shim.statebased import RoleType


@dataclass
class Asset:
    # Field order is alphabetical, as in the Go sample, so the stored JSON is identical.
    AppraisedValue: int
    Color: str
    ID: str
    Owner: str
    Size: int

    def to_json(self) -> bytes:
        # Built by hand rather than with dataclasses.asdict (a deep copy): this is the
        # benchmark's hot path.
        return json.dumps(
            {
                "AppraisedValue": self.AppraisedValue,
                "Color": self.Color,
                "ID": self.ID,
                "Owner": self.Owner,
                "Size": self.Size,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Asset:
        return cls(**json.loads(data))


class RangeEntry(TypedDict):
    key: str
    value: str


class RangePage(TypedDict):
    results: list[RangeEntry]
    bookmark: str
    fetchedRecordsCount: int


_INITIAL_ASSETS = [
    Asset(ID="asset1", Color="blue", Size=5, Owner="Tomoko", AppraisedValue=300),
    Asset(ID="asset2", Color="red", Size=5, Owner="Brad", AppraisedValue=400),
    Asset(ID="asset3", Color="green", Size=10, Owner="Jin Soo", AppraisedValue=500),
    Asset(ID="asset4", Color="yellow", Size=10, Owner="Max", AppraisedValue=600),
    Asset(ID="asset5", Color="black", Size=15, Owner="Adriana", AppraisedValue=700),
    Asset(ID="asset6", Color="white", Size=15, Owner="Michel", AppraisedValue=800),
]


class AssetContract(Contract):
    """Basic asset transfer (fabric-samples asset-transfer-basic) and stub exercises."""

    name = "AssetContract"

    # --- asset-transfer-basic ---------------------------------------------------------

    @transaction()
    async def InitLedger(self, ctx: Context) -> None:
        for asset in _INITIAL_ASSETS:
            await ctx.stub.put_state(asset.ID, asset.to_json())

    @transaction()
    async def CreateAsset(
        self, ctx: Context, id: str, color: str, size: int, owner: str, appraisedValue: int
    ) -> None:
        if await ctx.stub.get_state(id) is not None:
            raise ContractError(f"the asset {id} already exists")
        asset = Asset(ID=id, Color=color, Size=size, Owner=owner, AppraisedValue=appraisedValue)
        await ctx.stub.put_state(id, asset.to_json())

    @transaction(read_only=True)
    async def ReadAsset(self, ctx: Context, id: str) -> Asset:
        data = await ctx.stub.get_state(id)
        if data is None:
            raise ContractError(f"the asset {id} does not exist")
        return Asset.from_json(data)

    @transaction()
    async def UpdateAsset(
        self, ctx: Context, id: str, color: str, size: int, owner: str, appraisedValue: int
    ) -> None:
        if await ctx.stub.get_state(id) is None:
            raise ContractError(f"the asset {id} does not exist")
        asset = Asset(ID=id, Color=color, Size=size, Owner=owner, AppraisedValue=appraisedValue)
        await ctx.stub.put_state(id, asset.to_json())

    @transaction()
    async def DeleteAsset(self, ctx: Context, id: str) -> None:
        if await ctx.stub.get_state(id) is None:
            raise ContractError(f"the asset {id} does not exist")
        await ctx.stub.del_state(id)

    @transaction(read_only=True)
    async def AssetExists(self, ctx: Context, id: str) -> bool:
        return await ctx.stub.get_state(id) is not None

    @transaction()
    async def TransferAsset(self, ctx: Context, id: str, newOwner: str) -> str:
        asset = await self.ReadAsset(ctx, id)
        old_owner = asset.Owner
        asset.Owner = newOwner
        await ctx.stub.put_state(id, asset.to_json())
        return old_owner

    @transaction(read_only=True)
    async def GetAllAssets(self, ctx: Context) -> list[Asset]:
        assets = []
        async with ctx.stub.get_state_by_range("", "") as results:
            async for _key, value in results:
                assets.append(Asset.from_json(value))
        return assets

    # --- stub exercises -----------------------------------------------------------------

    @transaction()
    async def PutPrivate(self, ctx: Context, collection: str, key: str) -> None:
        """Store transient["value"] under `key` in `collection` (the value stays off-chain)."""
        value = ctx.stub.get_transient().get("value")
        if value is None:
            raise ContractError("transient field 'value' is required")
        await ctx.stub.put_private_data(collection, key, value)

    @transaction(read_only=True)
    async def GetPrivate(self, ctx: Context, collection: str, key: str) -> bytes:
        value = await ctx.stub.get_private_data(collection, key)
        if value is None:
            raise ContractError(f"private key {key} does not exist in {collection}")
        return value

    @transaction(read_only=True)
    async def GetPrivateHash(self, ctx: Context, collection: str, key: str) -> str:
        digest = await ctx.stub.get_private_data_hash(collection, key)
        if digest is None:
            raise ContractError(f"private key {key} does not exist in {collection}")
        return digest.hex()

    @transaction()
    async def DelPrivate(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.del_private_data(collection, key)

    @transaction()
    async def PurgePrivate(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.purge_private_data(collection, key)

    @transaction()
    async def SetKeyEndorsement(self, ctx: Context, key: str, orgs: list[str]) -> None:
        """Require a peer of every org in `orgs` to endorse future writes of `key`."""
        policy = KeyEndorsementPolicy()
        policy.add_orgs(RoleType.PEER, *orgs)
        await ctx.stub.set_state_validation_parameter(key, policy.policy())

    @transaction(read_only=True)
    async def GetKeyEndorsement(self, ctx: Context, key: str) -> list[str]:
        policy = await ctx.stub.get_state_validation_parameter(key)
        return KeyEndorsementPolicy(policy).list_orgs()

    @transaction()
    async def EmitEvent(self, ctx: Context, name: str, payload: str) -> None:
        ctx.stub.set_event(name, payload.encode())

    @transaction(read_only=True)
    async def RangeQuery(
        self, ctx: Context, start: str, end: str, pageSize: int, bookmark: str
    ) -> RangePage:
        page = await ctx.stub.get_state_by_range_with_pagination(start, end, pageSize, bookmark)
        return {
            "results": [
                {"key": key, "value": value.decode("utf-8", "replace")}
                for key, value in page.results
            ],
            "bookmark": page.bookmark,
            "fetchedRecordsCount": page.fetched_records_count,
        }

    @transaction(read_only=True)
    async def WhoAmI(self, ctx: Context) -> dict[str, Any]:
        """The caller as the chaincode sees it: MSP id, Fabric ID, NodeOU, CA attributes."""
        identity = ctx.client_identity
        return {
            "mspId": identity.get_msp_id(),
            "id": identity.get_id_string(),
            "nodeOU": identity.get_node_ou(),
            "attrs": identity.get_attributes(),
        }
