"""One dishonest org and key moves (test_dishonest_org.py's threat model, for
`Account:RotateKey` and `Passport:MoveKey`).

The desk's org holds the custodial key a holder moves away from, so it is the org with a
motive to undo a move (or to move a record to a key of its own). Neither a real key-move
transaction that ONE org's peer endorses (its chaincode may be honest or not: one endorsement
is one endorsement) nor a hand-written read-write set of a move signed by one org's peer
commits: the committing peers invalidate both with ENDORSEMENT_POLICY_FAILURE (the account and
passport records carry no key-level policy; the chaincode's majority holds), and the ledger
reads as before. The same double-signed move endorsed by a majority commits.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from credential_kit import HOSPITAL, PHARMACY, SCHOOL
from forgery_kit import POLICY_FAILURE, Forger
from mip_testkit import (
    Account,
    Holder,
    HolderKey,
    MipClients,
    open_account,
    register_passport,
    request_arg,
)

from chaincode.mip.accounts import account_key
from chaincode.mip.key_index import account_key_index, passport_key_index, retired_key_index
from chaincode.mip.passports import passport_key
from chaincode.protocol.key_moves import (
    ACCOUNT_ROTATE,
    PASSPORT_MOVE,
    account_rotate_body,
    passport_move_body,
)
from gateway.fabric import CommitError

ORGS = (HOSPITAL, SCHOOL, PHARMACY)


def dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


async def get(mip: MipClients, name: str, *args: str) -> dict[str, Any]:
    return dict(json.loads(await (await mip.client(SCHOOL, None)).evaluate(name, list(args))))


async def endorsed_alone(mip: MipClients, org: str, tx: str, args: list[str]) -> None:
    """`tx` endorsed by `org`'s peer alone: invalidated at commit."""
    gateway = await mip.client(org, "gateway")
    with pytest.raises(CommitError) as info:
        await gateway.submit(tx, args, endorsing_orgs=[org])
    assert info.value.code_name == POLICY_FAILURE, (org, tx)


async def test_no_org_alone_rotates_an_account_key(mip: MipClients, holder: Holder) -> None:
    account: Account = await open_account(mip, holder, HOSPITAL)
    before = await get(mip, "Account:Get", account.pseudonym)
    device = HolderKey.generate()
    body = account_rotate_body(account.pseudonym, device.public)
    args = [account.pseudonym, request_arg(account.sign(ACCOUNT_ROTATE, body)),
            request_arg(device.sign_request(ACCOUNT_ROTATE, body))]
    # 1. The real, double-signed move endorsed by one org alone (each of the three).
    for org in ORGS:
        await endorsed_alone(mip, org, "Account:RotateKey", args)
    # 2. A hand-written move to the org's own key (the desk keeping control), one org alone.
    attacker = HolderKey.generate()
    b64 = base64.b64encode(attacker.public_raw).decode()
    forged = {**before, "public_key": b64, "retired_keys": [before["public_key"]]}
    for org in ORGS:
        status = await Forger(mip, (org,)).submit({
            account_key(account.pseudonym): dumps(forged),
            account_key_index(attacker.public_raw): account.pseudonym.encode(),
            account_key_index(account.key.public_raw): None,
            retired_key_index(account.key.public_raw): b"\x00"})
        assert status.code_name == POLICY_FAILURE, org
        # Nor may it retire the holder's device key in advance, to block the move.
        status = await Forger(mip, (org,)).submit({retired_key_index(device.public_raw): b"\x00"})
        assert status.code_name == POLICY_FAILURE, org
    assert await get(mip, "Account:Get", account.pseudonym) == before
    # The holder's move, endorsed by the majority the chaincode policy asks, commits.
    moved = json.loads(await (await mip.client(HOSPITAL, "gateway")).submit(
        "Account:RotateKey", args))
    assert moved["public_key"] == device.public
    # 3. And once moved, one org alone cannot move it back to the custodial key, nor
    # un-retire that key (to open another account with it).
    for org in ORGS:
        status = await Forger(mip, (org,)).submit({account_key(account.pseudonym): dumps(before)})
        assert status.code_name == POLICY_FAILURE, org
        status = await Forger(mip, (org,)).submit({
            retired_key_index(account.key.public_raw): None})
        assert status.code_name == POLICY_FAILURE, org
    assert (await get(mip, "Account:Get", account.pseudonym))["public_key"] == device.public


async def test_no_org_alone_moves_a_passport_key(mip: MipClients) -> None:
    old, record = await register_passport(mip, HOSPITAL)
    pid = record["id"]
    before = await get(mip, "Passport:Get", pid)
    device = HolderKey.generate()
    body = passport_move_body(pid, device.public)
    args = [pid, request_arg(old.sign_request(PASSPORT_MOVE, body)),
            request_arg(device.sign_request(PASSPORT_MOVE, body))]
    for org in ORGS:  # the enrolling org (HospitalMSP) included
        await endorsed_alone(mip, org, "Passport:MoveKey", args)
    attacker = HolderKey.generate()
    stored = {k: v for k, v in before.items() if k != "vouches"}
    forged = {**stored, "public_key": base64.b64encode(attacker.public_raw).decode(),
              "key_version": stored["key_version"] + 1}
    for org in ORGS:
        status = await Forger(mip, (org,)).submit({
            passport_key(pid): dumps(forged),
            passport_key_index(attacker.public_raw): pid.encode(),
            passport_key_index(old.public_raw): None})
        assert status.code_name == POLICY_FAILURE, org
    assert await get(mip, "Passport:Get", pid) == before
    moved = json.loads(await (await mip.client(SCHOOL, "gateway")).submit(
        "Passport:MoveKey", args))
    assert moved["public_key"] == device.public


async def test_no_org_alone_rotates_a_moved_passport_or_rewrites_its_key_history(
        mip: MipClients) -> None:
    """`Passport:RotateKey` (guardian recovery) as changed for moved guardians: the
    guardians' approvals endorsed by one org's peer alone do not commit, nor does a hand-made
    rotation to the org's own key, nor a rewrite of `retired_keys` (which says whose current
    key approves for a moved guardian), nor un-retiring a guardian's moved-away key (so that
    its custodial copy approves again). The same approvals endorsed by a majority commit."""
    guardian_old, guardian = await register_passport(mip, HOSPITAL)
    guardian_device = HolderKey.generate()
    body = passport_move_body(guardian["id"], guardian_device.public)
    gateway = await mip.client(HOSPITAL, "gateway")
    await gateway.submit("Passport:MoveKey", [
        guardian["id"], request_arg(guardian_old.sign_request(PASSPORT_MOVE, body)),
        request_arg(guardian_device.sign_request(PASSPORT_MOVE, body))])
    old, record = await register_passport(mip, HOSPITAL, guardians=[guardian_old], threshold=1)
    pid = record["id"]
    device = HolderKey.generate()
    body = passport_move_body(pid, device.public)
    await gateway.submit("Passport:MoveKey", [
        pid, request_arg(old.sign_request(PASSPORT_MOVE, body)),
        request_arg(device.sign_request(PASSPORT_MOVE, body))])
    before = await get(mip, "Passport:Get", pid)
    guardian_before = await get(mip, "Passport:Get", guardian["id"])
    new_key = HolderKey.generate()
    approval = guardian_device.sign_request(
        "passport.rotate", {"passport_id": pid, "new_public_key": new_key.public})
    args = [pid, new_key.public, json.dumps([approval])]
    for org in ORGS:
        await endorsed_alone(mip, org, "Passport:RotateKey", args)
    attacker = HolderKey.generate()
    attacker_b64 = base64.b64encode(attacker.public_raw).decode()
    stored = {k: v for k, v in before.items() if k != "vouches"}
    guardian_stored = {k: v for k, v in guardian_before.items() if k != "vouches"}
    for org in ORGS:
        # The org's own key in place of the holder's.
        status = await Forger(mip, (org,)).submit({
            passport_key(pid): dumps({**stored, "public_key": attacker_b64,
                                      "retired_keys": [*stored["retired_keys"],
                                                       stored["public_key"]]}),
            passport_key_index(attacker.public_raw): pid.encode(),
            passport_key_index(device.public_raw): None})
        assert status.code_name == POLICY_FAILURE, org
        # A key history that makes the org's key the successor of the named guardian key.
        status = await Forger(mip, (org,)).submit({
            passport_key(guardian["id"]): dumps({**guardian_stored, "public_key": attacker_b64,
                                                 "retired_keys": [guardian_old.public]})})
        assert status.code_name == POLICY_FAILURE, org
        # The guardian's moved-away (custodial) key un-retired, to approve again.
        status = await Forger(mip, (org,)).submit({
            retired_key_index(guardian_old.public_raw): None})
        assert status.code_name == POLICY_FAILURE, org
    assert await get(mip, "Passport:Get", pid) == before
    assert await get(mip, "Passport:Get", guardian["id"]) == guardian_before
    rotated = json.loads(await (await mip.client(SCHOOL, "gateway")).submit(
        "Passport:RotateKey", args))
    assert rotated["public_key"] == new_key.public
    assert rotated["retired_keys"] == [old.public, device.public]
