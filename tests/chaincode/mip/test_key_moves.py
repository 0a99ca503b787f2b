"""Holder key moves (chaincode/mip/key_moves.py): `Account:RotateKey` and `Passport:MoveKey`
need both the key on record and the new key; a lone key of either side, a replayed request,
a closed account or an inactive passport is refused with a typed error and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from credential_kit import HOSPITAL, PHARMACY, grant, issue, request_and_read, revoke_grant
from mip_testkit import (
    Account,
    Holder,
    HolderKey,
    MipClients,
    expect_error,
    open_account,
    open_request,
    register_body,
    register_passport,
    request_arg,
)

from chaincode.protocol.key_moves import (
    ACCOUNT_ROTATE,
    PASSPORT_MOVE,
    account_rotate_body,
    passport_move_body,
)


def rotate_args(account: Account, old: HolderKey, new: HolderKey, *,
                old_signs: HolderKey | None = None, new_signs: HolderKey | None = None,
                body: dict[str, Any] | None = None) -> list[str]:
    """Account:RotateKey arguments: `old_signs` the request, `new_signs` the confirmation."""
    body = body or account_rotate_body(account.pseudonym, new.public)
    return [account.pseudonym, request_arg((old_signs or old).sign_request(ACCOUNT_ROTATE, body)),
            request_arg((new_signs or new).sign_request(ACCOUNT_ROTATE, body))]


async def get_account(mip: MipClients, pseudonym: str) -> dict[str, Any]:
    return dict(json.loads(await (await mip.client(HOSPITAL, "auditor")).evaluate(
        "Account:Get", [pseudonym])))


async def test_account_rotation_needs_both_keys(mip: MipClients, holder: Holder) -> None:
    account = await open_account(mip, holder, HOSPITAL)
    gateway = await mip.client(HOSPITAL, "gateway")
    old, new = account.key, HolderKey.generate()
    before = await get_account(mip, account.pseudonym)

    # The old key alone: it signs both halves (a desk holding the custodial key), or the
    # confirmation is missing.
    async with expect_error("bad_signature"):
        await gateway.submit("Account:RotateKey", rotate_args(account, old, new, new_signs=old))
    async with expect_error("bad_signature"):
        await gateway.submit("Account:RotateKey", [account.pseudonym, request_arg(
            old.sign_request(ACCOUNT_ROTATE, account_rotate_body(account.pseudonym,
                                                                 new.public))), "{}"])
    # The new key alone (it signs the request the key on record should have signed).
    async with expect_error("bad_signature"):
        await gateway.submit("Account:RotateKey", rotate_args(account, old, new, old_signs=new))
    # Both halves, but not over the same move; another account's pseudonym; another action.
    other = HolderKey.generate()
    async with expect_error("invalid_request"):
        await gateway.submit("Account:RotateKey", [
            account.pseudonym,
            request_arg(old.sign_request(ACCOUNT_ROTATE, account_rotate_body(
                account.pseudonym, new.public))),
            request_arg(new.sign_request(ACCOUNT_ROTATE, {**account_rotate_body(
                account.pseudonym, new.public), "extra": 1}))])
    async with expect_error("invalid_request"):
        await gateway.submit("Account:RotateKey", rotate_args(
            account, old, other, body=account_rotate_body("ab" * 32, other.public)))
    async with expect_error("invalid_request"):
        await gateway.submit("Account:RotateKey", [
            account.pseudonym,
            request_arg(old.sign_request("account.close", {"pseudonym": account.pseudonym})),
            request_arg(new.sign_request(ACCOUNT_ROTATE, account_rotate_body(
                account.pseudonym, new.public)))])
    # A key that already speaks for something: the holder's passport key, another account's.
    passport_key = holder.passport_key
    async with expect_error("conflict"):
        await gateway.submit("Account:RotateKey", rotate_args(account, old, passport_key))
    # A role that carries no holder requests.
    async with expect_error("access_denied"):
        await (await mip.client(HOSPITAL, "doctor")).submit(
            "Account:RotateKey", rotate_args(account, old, new))
    assert await get_account(mip, account.pseudonym) == before

    rotated = json.loads(await gateway.submit("Account:RotateKey",
                                              rotate_args(account, old, new)))
    assert rotated["public_key"] == new.public and rotated["retired_keys"] == [old.public]
    assert rotated["status"] == "open" and rotated["rotated"] >= rotated["opened"]
    assert await get_account(mip, account.pseudonym) == rotated

    # The old key signs nothing any more; the new one does.
    moved = Account(new, account.pseudonym, account.institution, rotated)
    async with expect_error("bad_signature"):
        await grant(mip, account, PHARMACY, "medical.prescription",
                    credential_type="prescription")
    await grant(mip, moved, PHARMACY, "medical.prescription", credential_type="prescription")
    # The retired key opens no new account either (it would link the two).
    _, _, request, presentation = open_request(holder, HOSPITAL, key=old)
    async with expect_error("conflict"):
        await gateway.submit("Account:Open", [request, presentation])


async def test_account_rotation_refuses_replays_and_closed_accounts(
        mip: MipClients, holder: Holder) -> None:
    account = await open_account(mip, holder, HOSPITAL)
    gateway = await mip.client(HOSPITAL, "gateway")
    new, newer = HolderKey.generate(), HolderKey.generate()
    first = rotate_args(account, account.key, new)
    await gateway.submit("Account:RotateKey", first)
    # The same pair again: the key on record is no longer the one that signed it.
    async with expect_error("bad_signature"):
        await gateway.submit("Account:RotateKey", first)
    # The new key's used confirmation replayed as its consent to a further move.
    async with expect_error("replay"):
        await gateway.submit("Account:RotateKey", [
            account.pseudonym, first[2], request_arg(newer.sign_request(
                ACCOUNT_ROTATE, account_rotate_body(account.pseudonym, newer.public)))])
    # A closed account cannot move (its grants ended with it).
    moved = Account(new, account.pseudonym, account.institution, {})
    await gateway.submit("Account:Close", [account.pseudonym, request_arg(
        moved.sign("account.close", {"pseudonym": account.pseudonym}))])
    async with expect_error("precondition_failed"):
        await gateway.submit("Account:RotateKey", rotate_args(moved, new, newer))


async def test_grants_signed_before_the_move_stay_the_holders_consent(
        mip: MipClients, holder: Holder) -> None:
    account = await open_account(mip, holder, HOSPITAL)
    issued = await issue(mip, account, "prescription")
    before = await grant(mip, account, PHARMACY, "medical.prescription",
                         credential_id=issued.credential_id)
    new = HolderKey.generate()
    gateway = await mip.client(HOSPITAL, "gateway")
    await gateway.submit("Account:RotateKey", rotate_args(account, account.key, new))
    # The pharmacy still reads under the grant the old key signed while it was the account's.
    read = await request_and_read(mip, PHARMACY, "pharmacist", issued, "medical.prescription")
    assert read
    # The holder revokes it with the new key; the old key cannot.
    moved = Account(new, account.pseudonym, account.institution, {})
    async with expect_error("bad_signature"):
        await revoke_grant(mip, account, before["grant_id"])
    assert (await revoke_grant(mip, moved, before["grant_id"]))["status"] == "revoked"
    async with expect_error("access_denied"):
        await request_and_read(mip, PHARMACY, "pharmacist", issued, "medical.prescription")


def move_args(passport_id: str, old: HolderKey, new: HolderKey, *,
              old_signs: HolderKey | None = None,
              new_signs: HolderKey | None = None) -> list[str]:
    body = passport_move_body(passport_id, new.public)
    return [passport_id, request_arg((old_signs or old).sign_request(PASSPORT_MOVE, body)),
            request_arg((new_signs or new).sign_request(PASSPORT_MOVE, body))]


async def get_passport(mip: MipClients, passport_id: str) -> dict[str, Any]:
    return dict(json.loads(await (await mip.client(HOSPITAL, "auditor")).evaluate(
        "Passport:Get", [passport_id])))


async def test_passport_move_needs_both_keys_and_keeps_guardian_recovery(
        mip: MipClients) -> None:
    guardians = [HolderKey.generate(), HolderKey.generate()]
    old, record = await register_passport(mip, HOSPITAL, guardians=guardians, threshold=2)
    pid = record["id"]
    device = HolderKey.generate()
    gateway = await mip.client(HOSPITAL, "gateway")
    before = await get_passport(mip, pid)
    async with expect_error("bad_signature"):  # old key alone
        await gateway.submit("Passport:MoveKey", move_args(pid, old, device, new_signs=old))
    async with expect_error("bad_signature"):  # new key alone
        await gateway.submit("Passport:MoveKey", move_args(pid, old, device, old_signs=device))
    async with expect_error("access_denied"):
        await (await mip.client(HOSPITAL, "doctor")).submit(
            "Passport:MoveKey", move_args(pid, old, device))
    assert await get_passport(mip, pid) == before

    # Carried by another org's gateway: any carrier may, the majority endorses.
    school = await mip.client("SchoolMSP", "gateway")
    moved = json.loads(await school.submit("Passport:MoveKey", move_args(pid, old, device)))
    assert moved["id"] == pid and moved["public_key"] == device.public
    assert moved["key_version"] == 2 and moved["guardians"] == record["guardians"]
    # The old key speaks for nothing: no vouch, no move back, no new passport with it.
    _, vouchee = await register_passport(mip, HOSPITAL)
    async with expect_error("not_found"):
        await gateway.submit("Passport:Vouch", [request_arg(
            old.sign_request("passport.vouch", {"vouchee": vouchee["id"]}))])
    async with expect_error("bad_signature"):
        await gateway.submit("Passport:MoveKey", move_args(pid, old, HolderKey.generate()))
    async with expect_error("conflict"):
        await (await mip.client(HOSPITAL, "registrar")).submit("Passport:Register", [
            request_arg(old.sign_request("passport.register", register_body()))])
    # Guardian recovery still rotates the (moved) passport to a new key.
    recovered = HolderKey.generate()
    body = {"passport_id": pid, "new_public_key": recovered.public}
    approvals = [g.sign_request("passport.rotate", body) for g in guardians]
    rotated = json.loads(await gateway.submit(
        "Passport:RotateKey", [pid, recovered.public, json.dumps(approvals)]))
    assert rotated["public_key"] == recovered.public and rotated["key_version"] == 3
    # ...and a recovery cannot point the passport back at the retired key.
    body = {"passport_id": pid, "new_public_key": old.public}
    async with expect_error("conflict"):
        await gateway.submit("Passport:RotateKey", [pid, old.public, json.dumps(
            [g.sign_request("passport.rotate", body) for g in guardians])])


async def test_an_inactive_passport_does_not_move(mip: MipClients) -> None:
    old, record = await register_passport(mip, HOSPITAL)
    registrar = await mip.client(HOSPITAL, "registrar")
    await registrar.submit("Passport:Suspend", [record["id"], "test"])
    async with expect_error("precondition_failed"):
        await registrar.submit("Passport:MoveKey",
                               move_args(record["id"], old, HolderKey.generate()))


async def test_a_guardian_whose_key_moved_approves_with_the_new_key_only(
        mip: MipClients) -> None:
    """Guardians are named by the keys they had at the holder's registration. A guardian
    passport that moved (or was itself rotated by its guardians) approves with its current
    key; the key it moved away from (a desk's custodial copy, a lost device) approves no more.
    And `RotateKey` retires the key it replaces, as `MoveKey` does."""
    guardian_old, guardian = await register_passport(mip, HOSPITAL)
    second_old, _ = await register_passport(mip, HOSPITAL)
    holder_old, record = await register_passport(
        mip, HOSPITAL, guardians=[guardian_old, second_old], threshold=2)
    pid = record["id"]
    gateway = await mip.client(HOSPITAL, "gateway")
    guardian_device, holder_device = HolderKey.generate(), HolderKey.generate()
    await gateway.submit("Passport:MoveKey", move_args(guardian["id"], guardian_old,
                                                       guardian_device))
    await gateway.submit("Passport:MoveKey", move_args(pid, holder_old, holder_device))
    assert (await get_passport(mip, pid))["retired_keys"] == [holder_old.public]

    new_key = HolderKey.generate()
    body = {"passport_id": pid, "new_public_key": new_key.public}

    async def rotate(*signers: HolderKey) -> dict[str, Any]:
        approvals = [s.sign_request("passport.rotate", body) for s in signers]
        return dict(json.loads(await gateway.submit(
            "Passport:RotateKey", [pid, new_key.public, json.dumps(approvals)])))

    before = await get_passport(mip, pid)
    async with expect_error("access_denied"):  # the retired named key
        await rotate(guardian_old, second_old)
    async with expect_error("access_denied"):  # a stranger's key
        await rotate(HolderKey.generate(), second_old)
    async with expect_error("invalid_request"):  # one guardian twice, by both its keys
        await rotate(guardian_device, guardian_device)
    assert await get_passport(mip, pid) == before
    rotated = await rotate(guardian_device, second_old)
    assert rotated["public_key"] == new_key.public
    assert rotated["retired_keys"] == [holder_old.public, holder_device.public]
    # The lost device's key is retired: it registers nothing and moves nothing.
    async with expect_error("conflict"):
        await (await mip.client(HOSPITAL, "registrar")).submit("Passport:Register", [
            request_arg(holder_device.sign_request("passport.register", register_body()))])

    # A guardian rotated by its own guardians approves with the rotated key too.
    third_old, third = await register_passport(mip, HOSPITAL, guardians=[second_old],
                                               threshold=1)
    _, other = await register_passport(mip, HOSPITAL, guardians=[third_old],
                                               threshold=1)
    third_new = HolderKey.generate()
    third_body = {"passport_id": third["id"], "new_public_key": third_new.public}
    await gateway.submit("Passport:RotateKey", [third["id"], third_new.public, json.dumps(
        [second_old.sign_request("passport.rotate", third_body)])])
    other_new = HolderKey.generate()
    other_body = {"passport_id": other["id"], "new_public_key": other_new.public}
    async with expect_error("access_denied"):
        await gateway.submit("Passport:RotateKey", [other["id"], other_new.public, json.dumps(
            [third_old.sign_request("passport.rotate", other_body)])])
    done = json.loads(await gateway.submit("Passport:RotateKey", [
        other["id"], other_new.public, json.dumps(
            [third_new.sign_request("passport.rotate", other_body)])]))
    assert done["public_key"] == other_new.public
