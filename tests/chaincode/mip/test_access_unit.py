"""Access:Read and grant re-verification against an in-memory stub (no devnet).

These cover what devnet cannot produce with honest chaincode: a grant record written by a
dishonest endorser without the holder's signature, a grant whose stored terms differ from the
signed ones, and a read request older than the 5-minute window.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from mip_testkit import HolderKey

from chaincode.mip.access import READ_WINDOW_S, AccessContract
from chaincode.mip.audit import access_index_key, access_key
from chaincode.mip.credentials import credential_key, private_key, salted_hash
from chaincode.mip.errors import AccessDenied, BadSignature, ClockSkew, Expired
from chaincode.mip.grants import grant_key
from chaincode.protocol.canonical import canonical_json
from chaincode.shim import Context, create_composite_key

PSEUDONYM = "ab" * 32
CLIENT = "x509::CN=pharmacist::CN=ca"


@dataclass
class FakeStub:
    now: int
    state: dict[str, bytes] = field(default_factory=dict)
    private: dict[tuple[str, str], bytes] = field(default_factory=dict)
    channel_id: str = "mipchannel"
    tx_id: str = "tx-unit"

    async def get_state(self, key: str) -> bytes | None:
        return self.state.get(key)

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        return self.private.get((collection, key))

    def get_tx_timestamp(self) -> Any:
        return SimpleNamespace(seconds=self.now, nanos=0)

    def get_state_by_partial_composite_key(self, object_type: str,
                                           attributes: list[str]) -> Any:
        prefix = create_composite_key(object_type, attributes)
        items = sorted((k, v) for k, v in self.state.items() if k.startswith(prefix))

        async def iterate() -> Any:
            for item in items:
                yield item
        return iterate()


@dataclass
class FakeIdentity:
    msp_id: str
    role: str | None
    client_id: str

    def get_msp_id(self) -> str:
        return self.msp_id

    def get_attribute_value(self, name: str) -> str | None:
        return self.role

    def get_id_string(self) -> str:
        return self.client_id


def context(stub: FakeStub, identity: FakeIdentity) -> Context:
    return cast(Context, SimpleNamespace(stub=stub, client_identity=identity))


def world(*, access_age: int = 10, forge: str | None = None) -> tuple[FakeStub, str]:
    now = int(time.time())
    stub = FakeStub(now)
    account_key = HolderKey.generate()
    stub.state[create_composite_key("mip.account", [PSEUDONYM])] = json.dumps({
        "pseudonym": PSEUDONYM, "public_key": account_key.public, "institution": "HospitalMSP",
        "status": "open"}).encode()
    content = {"diagnosis": "d", "notes": "n"}
    salt = secrets.token_bytes(16)
    stub.private[("medical", private_key("c1"))] = json.dumps(
        {"content": content, "salt": base64.b64encode(salt).decode()}).encode()
    stub.state[credential_key("c1")] = json.dumps({
        "id": "c1", "type": "record", "collection": "medical", "issuer_org": "HospitalMSP",
        "subject_account": PSEUDONYM, "hash": salted_hash(salt, canonical_json(content)),
        "status": "active"}).encode()
    terms = {"account": PSEUDONYM, "grant_id": "g1", "grantee_org": "PharmacyMSP",
             "scope": "medical.record", "credential_id": "c1", "expires": now + 3600}
    signer = HolderKey.generate() if forge == "key" else account_key
    request = signer.sign_request("grant.create", terms)
    grant = {**terms, "grantee_role": None, "credential_type": None, "status": "active",
             "created": now, "request": request}
    if forge == "terms":
        grant["expires"] = now + 7200  # stored terms differ from what the holder signed
    stub.state[grant_key(PSEUDONYM, "g1")] = json.dumps(grant).encode()
    access_id = "a1"
    stub.state[access_index_key(access_id)] = PSEUDONYM.encode()
    stub.state[access_key(PSEUDONYM, access_id)] = json.dumps({
        "access_id": access_id, "account": PSEUDONYM, "action": "read", "credential_id": "c1",
        "scope": "medical.record", "grant_id": "g1", "org": "PharmacyMSP", "role": "pharmacist",
        "client_id": CLIENT, "time": now - access_age}).encode()
    return stub, access_id


PHARMACIST = FakeIdentity("PharmacyMSP", "pharmacist", CLIENT)


async def test_read_releases_with_a_genuine_grant() -> None:
    stub, access_id = world()
    got = await AccessContract().Read(context(stub, PHARMACIST), access_id)
    assert got["fields"] == {"diagnosis": "d", "notes": "n"}


@pytest.mark.parametrize("forge", ["key", "terms"])
async def test_forged_grant_releases_nothing(forge: str) -> None:
    stub, access_id = world(forge=forge)
    with pytest.raises(BadSignature):
        await AccessContract().Read(context(stub, PHARMACIST), access_id)


async def test_read_window() -> None:
    stub, access_id = world(access_age=READ_WINDOW_S + 5)
    with pytest.raises(Expired):
        await AccessContract().Read(context(stub, PHARMACIST), access_id)
    # A client-chosen old proposal timestamp does not reopen the window: within the allowed
    # skew the peer's clock counts, beyond it the proposal is refused outright.
    stub.now -= 100
    with pytest.raises(Expired):
        await AccessContract().Read(context(stub, PHARMACIST), access_id)
    stub.now -= 3600
    with pytest.raises(ClockSkew):
        await AccessContract().Read(context(stub, PHARMACIST), access_id)


async def test_read_by_another_client_refused() -> None:
    stub, access_id = world()
    other = FakeIdentity("PharmacyMSP", "pharmacist", "x509::CN=someone-else::CN=ca")
    with pytest.raises(AccessDenied):
        await AccessContract().Read(context(stub, other), access_id)
