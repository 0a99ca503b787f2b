"""Each stub method, observed on the wire by the fake peer."""

from __future__ import annotations

import hashlib
import struct

from shim_testkit import CHAINCODE_ID, CHANNEL, MSG, FakePeer, User, build_proposal

from chaincode.shim import KeyEndorsementPolicy
from chaincode.shim._protos import shim_pb2


async def test_registers_with_the_package_id(peer: FakePeer) -> None:
    assert peer.registered_id == CHAINCODE_ID


async def test_put_get_del_state_wire_messages(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Put", "k1", "v1"])
    assert out.status == 200 and out.payload == b""
    (put,) = peer.requests(MSG.PUT_STATE)
    request = shim_pb2.PutState.FromString(put.payload)
    assert (request.key, request.value, request.collection) == ("k1", b"v1", "")
    assert put.channel_id == CHANNEL and put.txid == out.message.txid
    assert peer.state[("", "k1")] == b"v1"

    out = await peer.invoke(["Probe:Get", "k1"])
    assert out.status == 200 and out.payload == b"v1"
    (get,) = peer.requests(MSG.GET_STATE)
    assert shim_pb2.GetState.FromString(get.payload).key == "k1"

    out = await peer.invoke(["Probe:Get", "absent"])
    assert out.status == 200 and out.payload == b""

    out = await peer.invoke(["Probe:Del", "k1"])
    assert out.status == 200
    (delete,) = peer.requests(MSG.DEL_STATE)
    assert shim_pb2.DelState.FromString(delete.payload).key == "k1"
    assert ("", "k1") not in peer.state


async def test_empty_key_is_refused_before_reaching_the_peer(peer: FakePeer) -> None:
    for tx in ("Probe:PutEmptyKey", "Probe:DelEmptyKey"):
        out = await peer.invoke([tx])
        assert out.status == 500
        assert out.text == "key must not be an empty string"
    assert not peer.requests(MSG.PUT_STATE) and not peer.requests(MSG.DEL_STATE)


async def test_range_query_spans_batches(peer: FakePeer) -> None:
    peer.batch_size = 2
    for i in range(5):
        peer.state[("", f"key{i}")] = f"v{i}".encode()
    peer.state[("", "\x00composite\x00a\x00")] = b"hidden"
    out = await peer.invoke(["Probe:Range", "", ""])
    assert out.json() == [[f"key{i}", f"v{i}"] for i in range(5)]
    (first,) = peer.requests(MSG.GET_STATE_BY_RANGE)
    request = shim_pb2.GetStateByRange.FromString(first.payload)
    # An empty start is sent as \x01 so composite keys (\x00...) stay out of simple ranges.
    assert (request.startKey, request.endKey, request.metadata) == ("\x01", "", b"")
    assert len(peer.requests(MSG.QUERY_STATE_NEXT)) == 2
    # The peer dropped the exhausted iterator itself, so no close was needed.
    assert not peer.requests(MSG.QUERY_STATE_CLOSE)

    out = await peer.invoke(["Probe:Range", "key1", "key3"])
    assert out.json() == [["key1", "v1"], ["key2", "v2"]]


async def test_breaking_out_of_a_range_closes_the_peer_iterator(peer: FakePeer) -> None:
    peer.batch_size = 2
    for i in range(6):
        peer.state[("", f"key{i}")] = b"v"
    out = await peer.invoke(["Probe:RangeFirst", "key0", "key9", "3"])
    assert out.json() == ["key0", "key1", "key2"]
    (close,) = peer.requests(MSG.QUERY_STATE_CLOSE)
    next_id = shim_pb2.QueryStateNext.FromString(peer.requests(MSG.QUERY_STATE_NEXT)[0].payload).id
    assert shim_pb2.QueryStateClose.FromString(close.payload).id == next_id
    assert peer.open_iterators == 0


async def test_range_keys_starting_with_nul_are_refused(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Range", "\x00abc", ""])
    assert out.status == 500
    assert "null character" in out.text
    assert not peer.requests(MSG.GET_STATE_BY_RANGE)


async def test_paginated_range_follows_bookmarks(peer: FakePeer) -> None:
    peer.batch_size = 2  # a page of 3 arrives in two batches; metadata comes with the last
    for i in range(7):
        peer.state[("", f"a{i}")] = f"{i}".encode()
    pages = []
    bookmark = ""
    while True:
        out = await peer.invoke(["Probe:RangePage", "a", "b", "3", bookmark])
        page = out.json()
        pages.append([k for k, _ in page["results"]])
        bookmark = page["bookmark"]
        assert page["count"] == len(page["results"])
        if not bookmark:
            break
    assert pages == [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6"]]
    first = shim_pb2.GetStateByRange.FromString(peer.requests(MSG.GET_STATE_BY_RANGE)[1].payload)
    query = shim_pb2.QueryMetadata.FromString(first.metadata)
    assert (query.pageSize, query.bookmark) == (3, "a3")


async def test_paginated_range_rejects_a_bad_page_size(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:RangePage", "a", "b", "0", ""])
    assert out.status == 500 and "page_size" in out.text


async def test_composite_keys_round_trip_through_partial_queries(peer: FakePeer) -> None:
    for color, name in [("blue", "a1"), ("blue", "a2"), ("red", "a3")]:
        out = await peer.invoke(["Probe:PutComposite", "color~name", f'["{color}","{name}"]', name])
        assert out.payload.decode() == f"\x00color~name\x00{color}\x00{name}\x00"
    out = await peer.invoke(["Probe:Partial", "color~name", '["blue"]'])
    assert out.json() == [
        ["color~name", ["blue", "a1"], "a1"],
        ["color~name", ["blue", "a2"], "a2"],
    ]
    request = shim_pb2.GetStateByRange.FromString(peer.requests(MSG.GET_STATE_BY_RANGE)[0].payload)
    assert request.startKey == "\x00color~name\x00blue\x00"
    assert request.endKey == "\x00color~name\x00blue\x00\U0010ffff"

    out = await peer.invoke(["Probe:PartialPage", "color~name", "[]", "2", ""])
    assert out.json() == {
        "keys": [["blue", "a1"], ["blue", "a2"]],
        "bookmark": "\x00color~name\x00red\x00a3\x00",
    }

    out = await peer.invoke(["Probe:PutComposite", "bad\x00type", "[]", "x"])
    assert out.status == 500 and "U+0000" in out.text
    out = await peer.invoke(["Probe:PutComposite", "t", '["a\U0010ffff"]', "x"])
    assert out.status == 500 and "U+10FFFF" in out.text


async def test_private_data_calls(peer: FakePeer) -> None:
    secret = b"very-private-value"
    out = await peer.invoke(["Probe:PutPrivate", "col1", "p1"], transient={"value": secret})
    assert out.status == 200
    put = shim_pb2.PutState.FromString(peer.requests(MSG.PUT_STATE)[0].payload)
    assert (put.collection, put.key, put.value) == ("col1", "p1", secret)

    out = await peer.invoke(["Probe:GetPrivate", "col1", "p1"])
    assert out.payload == secret
    get = shim_pb2.GetState.FromString(peer.requests(MSG.GET_STATE)[0].payload)
    assert (get.collection, get.key) == ("col1", "p1")

    out = await peer.invoke(["Probe:GetPrivateHash", "col1", "p1"])
    assert out.payload.decode() == hashlib.sha256(secret).hexdigest()
    (hash_request,) = peer.requests(MSG.GET_PRIVATE_DATA_HASH)
    assert shim_pb2.GetState.FromString(hash_request.payload).collection == "col1"

    peer.state[("col1", "p2")] = b"x"
    peer.state[("col1", "\x00t\x00a\x00")] = b"y"
    out = await peer.invoke(["Probe:PrivateRange", "col1", "", ""])
    assert out.json() == [["p1", secret.decode()], ["p2", "x"]]
    out = await peer.invoke(["Probe:PrivatePartial", "col1", "t", "[]"])
    assert out.json() == [["a"]]

    out = await peer.invoke(["Probe:DelPrivate", "col1", "p2"])
    assert out.status == 200
    assert (
        shim_pb2.DelState.FromString(peer.requests(MSG.DEL_STATE)[0].payload).collection == "col1"
    )

    out = await peer.invoke(["Probe:PurgePrivate", "col1", "p1"])
    assert out.status == 200
    (purge,) = peer.requests(MSG.PURGE_PRIVATE_DATA)
    request = shim_pb2.DelState.FromString(purge.payload)
    assert (request.collection, request.key) == ("col1", "p1")
    assert ("col1", "p1") not in peer.state

    out = await peer.invoke(["Probe:GetPrivateHash", "col1", "p1"])
    assert out.status == 200 and out.payload == b""  # None encodes as an empty payload

    out = await peer.invoke(["Probe:EmptyCollection"])
    assert out.status == 500 and out.text == "collection must not be an empty string"


async def test_validation_parameters(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:SetEP", "k", '["SchoolMSP","HospitalMSP"]'])
    assert out.status == 200
    (put,) = peer.requests(MSG.PUT_STATE_METADATA)
    request = shim_pb2.PutStateMetadata.FromString(put.payload)
    assert (request.key, request.collection) == ("k", "")
    assert request.metadata.metakey == "VALIDATION_PARAMETER"
    assert KeyEndorsementPolicy(request.metadata.value).list_orgs() == ["HospitalMSP", "SchoolMSP"]

    out = await peer.invoke(["Probe:GetEP", "k"])
    assert out.json() == ["HospitalMSP", "SchoolMSP"]
    assert (
        shim_pb2.GetStateMetadata.FromString(peer.requests(MSG.GET_STATE_METADATA)[0].payload).key
        == "k"
    )
    out = await peer.invoke(["Probe:GetEP", "other"])
    assert out.status == 200 and out.payload == b""

    out = await peer.invoke(["Probe:SetPrivateEP", "col", "pk", '["PharmacyMSP"]'])
    assert out.status == 200
    out = await peer.invoke(["Probe:GetPrivateEP", "col", "pk"])
    assert out.json() == ["PharmacyMSP"]
    assert ("col", "pk") in peer.metadata


async def test_set_event_arrives_in_completed(peer: FakePeer) -> None:
    out = await peer.invoke(["Probe:Event", "AssetMoved", "payload-bytes"])
    assert out.type == MSG.COMPLETED and out.status == 200
    event = out.message.chaincode_event
    assert (event.event_name, event.payload) == ("AssetMoved", b"payload-bytes")

    out = await peer.invoke(["Probe:Event", "", "x"])
    assert out.status == 500 and "event name" in out.text
    assert not out.message.HasField("chaincode_event")


async def test_proposal_facts(peer: FakePeer, user: User) -> None:
    built = build_proposal(user, [b"Probe:Facts", b"p1"], transient={"b": b"1", "a": b"2"}, epoch=7)
    out = await peer.invoke(["Probe:Facts", "p1"], proposal=built)
    # Facts takes no parameters: the extra one is refused...
    assert out.status == 500 and "expected 0, got 1" in out.text
    built = build_proposal(user, [b"Probe:Facts"], transient={"b": b"1", "a": b"2"}, epoch=7)
    facts = (await peer.invoke(["Probe:Facts"], proposal=built)).json()
    assert facts["txid"] == built.txid and facts["channel"] == CHANNEL
    assert (facts["seconds"], facts["nanos"]) == (built.timestamp.seconds, built.timestamp.nanos)
    assert facts["iso"].endswith("+00:00")
    binding = hashlib.sha256(built.nonce + built.creator + struct.pack("<Q", 7)).hexdigest()
    assert facts["binding"] == binding
    assert facts["creator"] == built.creator.hex()
    assert facts["transient"] == ["a", "b"]
    assert (facts["function"], facts["params"]) == ("Probe:Facts", [])
    assert facts["proposal_len"] == len(built.signed.proposal_bytes)


async def test_concurrent_stub_calls_in_one_transaction_are_serialised(peer: FakePeer) -> None:
    peer.state[("", "a")] = b"A"
    peer.state[("", "b")] = b"B"
    out = await peer.invoke(["Probe:Gather", "a", "b"])
    assert out.json() == ["A", "B"]


async def test_history_rich_query_and_chaincode_to_chaincode(peer: FakePeer) -> None:
    peer.history["h"] = [("tx1", b"one", False), ("tx2", b"", True)]
    out = await peer.invoke(["Probe:History", "h"])
    assert out.json() == [["tx1", "one", False], ["tx2", "", True]]
    assert (
        shim_pb2.GetHistoryForKey.FromString(peer.requests(MSG.GET_HISTORY_FOR_KEY)[0].payload).key
        == "h"
    )

    out = await peer.invoke(["Probe:Rich", '{"selector":{}}'])
    assert (out.status, out.text) == (500, "ExecuteQuery not supported for leveldb")
    request = shim_pb2.GetQueryResult.FromString(peer.requests(MSG.GET_QUERY_RESULT)[0].payload)
    assert request.query == '{"selector":{}}'

    peer.chaincodes["other/otherchannel"] = (200, "", b"called")
    out = await peer.invoke(["Probe:Call", "other", "otherchannel", '["Fn","a"]'])
    assert out.json() == [200, "", "called"]
    (invoke,) = peer.requests(MSG.INVOKE_CHAINCODE)
    from chaincode.shim._protos import chaincode_pb2

    spec = chaincode_pb2.ChaincodeSpec.FromString(invoke.payload)
    assert spec.chaincode_id.name == "other/otherchannel"
    assert list(spec.input.args) == [b"Fn", b"a"]
