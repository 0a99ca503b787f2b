"""Rule 9: nothing private on the public ledger.

Runs a full flow (issue every credential type, grants, audited reads, verify, dispense, revoke,
erase) with canary strings in every private field and a canary-prefixed salt, then reads
devnet's SQLite ledger and scans every block (raw bytes, and every decoded envelope: proposal
payload and its arguments, proposal response, read/write sets public and hashed, chaincode
events, responses), every public state value and its metadata, the hashed private state and
the event table for any canary. The private stores must hold the content where they should:
medical content only in HospitalMSP's store, education content only in SchoolMSP's, and the
erased credential nowhere. The devnet and chaincode logs are scanned too.

On the real Fabric network (the `fabric` variant) the blocks come from each org's peer through
qscc (raw and decoded, as above: public writes, hashed private writes and events are all in
them) and every orderer, peer and chaincode-server log is scanned. The peers' LevelDB state and
private stores cannot be read beside the running peers, so the store checks (public state rows,
which private store holds what) are devnet-only; on Fabric, dissemination to collection members
only is the peer's own behaviour (tests/network/fabric checks a non-member peer has no value).
"""

from __future__ import annotations

import base64
import importlib
import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from credential_kit import (
    HOSPITAL,
    ISSUER,
    PHARMACY,
    SCHOOL,
    CounterGateway,
    Issued,
    dispense,
    grant,
    issue_args,
    request_and_read,
    sample_content,
)
from mip_testkit import (
    ORGS,
    Holder,
    MipClients,
    MipNetwork,
    fabric_blocks,
    new_id,
    open_account,
    request_arg,
)

from chaincode.protocol.canonical import canonical_json
from network.devnet._protos import (
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    kv_rwset_pb2,
    proposal_pb2,
    proposal_response_pb2,
    rwset_pb2,
    transaction_pb2,
)

# Loaded by name: protobuf ships no type stubs here (as network/devnet/_protos.py does).
MessageToJson: Any = importlib.import_module("google.protobuf.json_format").MessageToJson
TAG = secrets.token_hex(4)


def canary(name: str) -> str:
    return f"CANARY-{name}-{TAG}"


def canary_salt() -> bytes:
    return f"SALT{TAG}".encode() + secrets.token_bytes(16)


def forms(secret: bytes) -> list[bytes]:
    """A secret as it could appear: raw, base64, hex (any of them would be a leak)."""
    return [secret, base64.b64encode(secret), secret.hex().encode()]


async def issue_with_salt(mip: MipClients, account: Any, cred_type: str,
                          content: dict[str, Any]) -> Issued:
    org, role = ISSUER[cred_type]
    content_bytes, salt = canonical_json(content), canary_salt()
    credential_id = new_id(cred_type[:4])
    issuer = await mip.client(org, role)
    record = json.loads(await issuer.submit("Credential:Issue", issue_args(
        credential_id, cred_type, account.pseudonym, content, content_bytes, salt)))
    await issuer.submit("Credential:Store", [credential_id],
                        transient={"content": content_bytes, "salt": salt}, endorsing_orgs=[org])
    return Issued(credential_id, cred_type, content, content_bytes, salt, record)


def decoded_envelope_texts(envelope_bytes: bytes) -> Iterator[str]:
    """Every layer of a transaction envelope, decoded, as JSON text."""
    def text(message: Any) -> str:
        return str(MessageToJson(message))

    envelope = common_pb2.Envelope.FromString(envelope_bytes)
    payload = common_pb2.Payload.FromString(envelope.payload)
    yield text(payload.header)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    if channel_header.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
        yield text(payload)
        return
    tx = transaction_pb2.Transaction.FromString(payload.data)
    for action in tx.actions:
        cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        cpp = proposal_pb2.ChaincodeProposalPayload.FromString(cap.chaincode_proposal_payload)
        assert not cpp.TransientMap, "transient data reached a block"
        invocation = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input)
        yield text(invocation)
        yield from (arg.decode("utf-8", "replace") for arg in invocation.chaincode_spec.input.args)
        prp = proposal_response_pb2.ProposalResponsePayload.FromString(
            cap.action.proposal_response_payload)
        cc_action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
        yield text(cc_action.response)
        yield cc_action.response.payload.decode("utf-8", "replace")
        if cc_action.events:
            event = chaincode_event_pb2.ChaincodeEvent.FromString(cc_action.events)
            yield text(event)
            yield event.payload.decode("utf-8", "replace")
        txrw = rwset_pb2.TxReadWriteSet.FromString(cc_action.results)
        for ns in txrw.ns_rwset:
            kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            yield text(kv)
            for write in kv.writes:
                yield write.key
                yield write.value.decode("utf-8", "replace")
            for coll in ns.collection_hashed_rwset:
                yield text(kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset))


async def run_flow(mip: MipClients, holder: Holder) -> tuple[list[bytes], dict[str, Issued]]:
    """The full flow; returns every secret (as bytes) and the issued credentials."""
    hospital = await open_account(mip, holder, HOSPITAL)
    school = await open_account(mip, holder, SCHOOL)
    contents = {
        "prescription": sample_content(
            "prescription", drug=canary("drug"), strength=canary("strength"),
            prescriber=canary("prescriber"), refills=1),
        "record": {"diagnosis": canary("diagnosis"), "notes": canary("notes")},
        "diploma": {"degree": canary("degree"), "field": canary("field"),
                    "awarded": canary("awarded")},
        "transcript": {"courses": [{"course": canary("course"), "grade": canary("grade")}]},
    }
    issued = {}
    for cred_type, content in contents.items():
        account = hospital if cred_type in ("prescription", "record") else school
        issued[cred_type] = await issue_with_salt(mip, account, cred_type, content)
    rx, record, diploma = issued["prescription"], issued["record"], issued["diploma"]

    await grant(mip, hospital, PHARMACY, "medical.prescription", credential_id=rx.credential_id)
    await grant(mip, school, HOSPITAL, "education.diploma", credential_type="diploma")
    got = await request_and_read(mip, PHARMACY, "pharmacist", rx, "medical.prescription")
    assert got["fields"]["drug"] == canary("drug")
    got = await request_and_read(mip, HOSPITAL, "registrar", diploma, "education.diploma")
    assert got["fields"]["degree"] == canary("degree")
    got = await request_and_read(mip, HOSPITAL, "doctor", record, "medical.record")
    assert got["fields"]["diagnosis"] == canary("diagnosis")
    anyone = await mip.client(PHARMACY, None)
    for item in issued.values():
        verdict = json.loads(await anyone.evaluate("Credential:Verify", [item.credential_id],
                                                   transient=item.transient))
        assert verdict["valid"] is True

    counter = CounterGateway.generate()
    await counter.register(mip)
    await dispense(mip, rx, counter.attest(rx.credential_id, hospital.pseudonym))
    await (await mip.client(SCHOOL, "school_registrar")).submit(
        "Credential:Revoke", [issued["transcript"].credential_id, "reissued"])
    erase = hospital.sign("credential.erase", {"credential_id": record.credential_id})
    carrier = await mip.client(HOSPITAL, "gateway")
    await carrier.submit("Credential:Erase", [request_arg(erase)])
    await carrier.submit("Credential:Purge", [record.credential_id], endorsing_orgs=[HOSPITAL])

    secrets_: list[bytes] = [canary(name).encode() for name in (
        "drug", "strength", "prescriber", "diagnosis", "notes", "degree", "field", "awarded",
        "course", "grade")]
    for item in issued.values():
        secrets_ += [*forms(item.salt), item.content_bytes, base64.b64encode(item.content_bytes)]
    secrets_.append(f"SALT{TAG}".encode())
    return secrets_, issued


def assert_clean(where: str, data: bytes | str, secrets_: list[bytes]) -> None:
    blob = data.encode() if isinstance(data, str) else data
    for secret in secrets_:
        assert secret not in blob, f"private value found in {where}"


def private_store(db: sqlite3.Connection) -> dict[tuple[str, str], bytes]:
    """(org, collection) -> every private value that org's store holds, concatenated."""
    out: dict[tuple[str, str], bytes] = {}
    for org, coll, value in db.execute("SELECT org, coll, value FROM pvt_data"):
        out[(org, coll)] = out.get((org, coll), b"") + bytes(value)
    return out


def assert_blocks_clean(where: str, blocks: list[tuple[int, bytes]],
                        secrets_: list[bytes]) -> None:
    """Raw bytes and every decoded layer of every transaction of every block."""
    assert len(blocks) > 10
    envelopes = 0
    for number, raw in blocks:
        assert_clean(f"{where} block {number}", raw, secrets_)
        block = common_pb2.Block.FromString(raw)
        if number == 0:
            continue
        for envelope in block.data.data:
            envelopes += 1
            for text in decoded_envelope_texts(envelope):
                assert_clean(f"{where} block {number} (decoded)", text, secrets_)
    assert envelopes > 10


async def test_no_private_value_on_the_public_ledger(
    mip: MipClients, mip_network: MipNetwork, holder: Holder
) -> None:
    secrets_, _issued = await run_flow(mip, holder)
    if mip_network.is_devnet:
        check_devnet_store(mip_network, secrets_)
    else:
        for org in ORGS:
            blocks = await fabric_blocks(mip, org)
            assert_blocks_clean(f"{org} peer", list(enumerate(blocks)), secrets_)
    logs = mip_network.log_paths
    assert any(log.is_file() for log in logs)
    for log in logs:
        if log.is_file():
            assert_clean(f"log {log.name}", log.read_bytes(), secrets_)


def check_devnet_store(mip_network: MipNetwork, secrets_: list[bytes]) -> None:
    path: Path = mip_network.data_dir / "ledger.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        blocks = db.execute("SELECT number, block FROM blocks ORDER BY number").fetchall()
        assert_blocks_clean("devnet", [(n, bytes(raw)) for n, raw in blocks], secrets_)
        for key, value, metadata in db.execute("SELECT key, value, metadata FROM state"):
            assert_clean("public state", bytes(key) + bytes(value) + bytes(metadata or b""),
                         secrets_)
        for row in db.execute("SELECT key_hash, value_hash, metadata FROM pvt_hashed"):
            assert_clean("hashed private state", b"".join(bytes(c or b"") for c in row),
                         secrets_)
        for name, payload in db.execute("SELECT name, payload FROM events"):
            assert_clean("events", name.encode() + bytes(payload), secrets_)
        for txid, in db.execute("SELECT txid FROM txs"):
            assert_clean("tx index", txid, secrets_)

        # The private stores hold the content, and only the member orgs' stores.
        stores = private_store(db)

        def holders(secret: str) -> set[tuple[str, str]]:
            return {where for where, blob in stores.items() if secret.encode() in blob}

        assert holders(canary("drug")) == {(HOSPITAL, "medical")}
        assert holders(canary("grade")) == {(SCHOOL, "education")}
        assert holders(canary("degree")) == {(SCHOOL, "education")}
        for (org, _coll), blob in stores.items():
            assert_clean(f"{org} private store after erasure",
                         blob, [canary("diagnosis").encode(), canary("notes").encode()])
    finally:
        db.close()
