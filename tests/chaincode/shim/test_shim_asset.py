"""The asset-transfer-basic contract and its stub-exercise transactions."""

from __future__ import annotations

import hashlib
import json

from shim_testkit import MSG, FakePeer, make_user

from chaincode.shim import KeyEndorsementPolicy


async def test_asset_lifecycle(peer: FakePeer) -> None:
    assert (await peer.invoke(["AssetContract:InitLedger"])).status == 200
    assert len([k for (c, k) in peer.state if c == ""]) == 6
    stored = peer.state[("", "asset1")]
    # Byte-identical to the Go sample's json.Marshal of the Asset struct.
    assert stored == (
        b'{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}'
    )

    create = ["AssetContract:CreateAsset", "asset7", "purple", "20", "Ana", "900"]
    out = await peer.invoke(create)
    assert out.status == 200
    out = await peer.invoke(create)
    assert (out.status, out.text) == (500, "the asset asset7 already exists")

    out = await peer.invoke(["AssetContract:ReadAsset", "asset7"])
    assert out.json() == {
        "AppraisedValue": 900,
        "Color": "purple",
        "ID": "asset7",
        "Owner": "Ana",
        "Size": 20,
    }
    out = await peer.invoke(["AssetContract:ReadAsset", "nope"])
    assert (out.status, out.text) == (500, "the asset nope does not exist")

    out = await peer.invoke(["AssetContract:UpdateAsset", "asset7", "red", "1", "Bo", "5"])
    assert out.status == 200
    assert json.loads(peer.state[("", "asset7")])["Owner"] == "Bo"
    out = await peer.invoke(["AssetContract:UpdateAsset", "ghost", "red", "1", "Bo", "5"])
    assert out.status == 500

    out = await peer.invoke(["AssetContract:TransferAsset", "asset7", "Cy"])
    assert out.payload == b"Bo"
    assert json.loads(peer.state[("", "asset7")])["Owner"] == "Cy"

    assert (await peer.invoke(["AssetContract:AssetExists", "asset7"])).json() is True
    assert (await peer.invoke(["AssetContract:DeleteAsset", "asset7"])).status == 200
    assert (await peer.invoke(["AssetContract:AssetExists", "asset7"])).json() is False
    assert (await peer.invoke(["AssetContract:DeleteAsset", "asset7"])).status == 500

    out = await peer.invoke(["AssetContract:GetAllAssets"])
    assert [a["ID"] for a in out.json()] == [f"asset{i}" for i in range(1, 7)]

    out = await peer.invoke(["AssetContract:CreateAsset", "a", "c", "big", "o", "1"])
    assert (out.status, out.text) == (500, "invalid argument size: expected JSON for int")


async def test_create_asset_is_one_read_and_one_write(peer: FakePeer) -> None:
    out = await peer.invoke(["AssetContract:CreateAsset", "x1", "blue", "5", "Tom", "300"])
    txid = out.message.txid
    kinds = [m.type for m in peer.received if m.txid == txid]
    assert kinds == [MSG.GET_STATE, MSG.PUT_STATE, MSG.COMPLETED]


async def test_private_data_transactions(peer: FakePeer) -> None:
    secret = b'{"record":"confidential"}'
    out = await peer.invoke(["AssetContract:PutPrivate", "col", "p"], transient={"value": secret})
    assert out.status == 200 and peer.state[("col", "p")] == secret
    out = await peer.invoke(["AssetContract:PutPrivate", "col", "q"])
    assert (out.status, out.text) == (500, "transient field 'value' is required")
    assert (await peer.invoke(["AssetContract:GetPrivate", "col", "p"])).payload == secret
    out = await peer.invoke(["AssetContract:GetPrivateHash", "col", "p"])
    assert out.payload.decode() == hashlib.sha256(secret).hexdigest()
    assert (await peer.invoke(["AssetContract:PurgePrivate", "col", "p"])).status == 200
    assert peer.requests(MSG.PURGE_PRIVATE_DATA)
    assert (await peer.invoke(["AssetContract:GetPrivate", "col", "p"])).status == 500
    peer.state[("col", "d")] = b"1"
    assert (await peer.invoke(["AssetContract:DelPrivate", "col", "d"])).status == 200
    assert ("col", "d") not in peer.state


async def test_key_endorsement_and_events(peer: FakePeer) -> None:
    out = await peer.invoke(
        ["AssetContract:SetKeyEndorsement", "asset1", '["SchoolMSP","HospitalMSP"]']
    )
    assert out.status == 200
    stored = peer.metadata[("", "asset1")]["VALIDATION_PARAMETER"]
    assert KeyEndorsementPolicy(stored).list_orgs() == ["HospitalMSP", "SchoolMSP"]
    out = await peer.invoke(["AssetContract:GetKeyEndorsement", "asset1"])
    assert out.json() == ["HospitalMSP", "SchoolMSP"]

    out = await peer.invoke(["AssetContract:EmitEvent", "Ping", "hello"])
    event = out.message.chaincode_event
    assert (event.event_name, event.payload) == ("Ping", b"hello")


async def test_range_query_pages(peer: FakePeer) -> None:
    assert (await peer.invoke(["AssetContract:InitLedger"])).status == 200
    out = await peer.invoke(["AssetContract:RangeQuery", "asset1", "asset9", "4", ""])
    page = out.json()
    assert [r["key"] for r in page["results"]] == ["asset1", "asset2", "asset3", "asset4"]
    assert (page["bookmark"], page["fetchedRecordsCount"]) == ("asset5", 4)
    out = await peer.invoke(["AssetContract:RangeQuery", "asset1", "asset9", "4", "asset5"])
    page = out.json()
    assert [r["key"] for r in page["results"]] == ["asset5", "asset6"]
    assert page["bookmark"] == ""


async def test_who_am_i(peer: FakePeer) -> None:
    user = make_user(msp_id="SchoolMSP", cn="teacher1", attrs={"mip.role": "teacher"})
    out = await peer.invoke(["AssetContract:WhoAmI"], user=user)
    who = out.json()
    assert who["mspId"] == "SchoolMSP"
    assert who["id"].startswith("x509::CN=teacher1,OU=client,")
    assert who["nodeOU"] == "client"
    assert who["attrs"] == {"mip.role": "teacher"}
