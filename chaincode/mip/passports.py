"""Passports: one face-verified identity per person, owned by the holder's Ed25519 key.

Lifecycle (docs/chaincode-transactions.md, "Passports"):

- `Register` by a registrar, carrying the holder's request signed by the new passport key.
  Level 1 = live face verified at enrolment, 2 = face and password (attested by the
  registrar). A face commitment and an enrolment nonce are each used once.
- `Vouch`, signed by the voucher's passport key: k distinct active level-2+ passports lift a
  level-2 passport to level 3 (k = Config `vouch_k`).
- `Suspend` / `Reinstate` / `Revoke` by a registrar of the passport's enrolling org, with a
  reason. Revoking as fraudulent is a majority decision: a registrar of any org proposes (or
  confirms) it with a reason kept on the record, and it takes effect once registrars of a
  majority of member orgs have (the enrolling org counts as one like any other); it then flags
  every vouch the passport gave and drops vouchees that fall below k back to level 2.
- `Screen` (Config `screening_required` = 1): a new passport is *provisional*: the record
  carries `screening` {status "pending", level_on_clear, decisions}, its level is 1 whatever the
  desk attested, and it can neither vouch nor be vouched for. A registrar of any member org
  records its org's outcome of the duplicate screening or review ("clear": not a duplicate in
  its gallery / different person; "duplicate": same person as one of its passports), once per
  org. Registrars of a majority of member orgs agreeing decide: "clear" lifts the level to
  `level_on_clear`, "duplicate" revokes the passport (reason "duplicate"). One org, the
  enrolling one included, can neither clear nor refuse alone.
- `RotateKey` (recovery) with k-of-n approvals signed by the guardians the holder named (a
  guardian whose own key moved since approves with its passport's current key, never with
  the key it moved away from: `_guardian_signing`). The replaced key is retired.
- `MoveKey` (the holder's own move, e.g. off the desk's custody onto their device): signed by
  both the passport key on record and the new key (chaincode/mip/key_moves.py). Guardians
  stay as they were, so recovery still works afterwards.
- `SetFaceCommitment`, signed by the passport key and carried by the enrolling org: the
  commitment of a re-enrolled face reference (the gateway's guardian recovery with a changed
  face). Every commitment, of a passport or an account, is used once (`mip.facecommit`): a
  new one must be unused, and a replaced one stays used.

A passport record has no key-level endorsement policy: whatever changes it later (status,
level, key) is endorsed under the chaincode's majority policy (chaincode/protocol/deployment.py),
so no single org, the enrolling one included, can rewrite it alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chaincode.mip.config import get_setting
from chaincode.mip.errors import (
    AccessDenied,
    Conflict,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
)
from chaincode.mip.holder_auth import b64, tx_unix_time, unb64, verify_holder_request
from chaincode.mip.key_index import (
    key_in_use,
    passport_key_index,
    retire_key,
    retired_key_index,
)
from chaincode.mip.key_moves import verify_key_move
from chaincode.mip.staff import MEMBER_ORGS, caller, require_staff
from chaincode.protocol.deployment import MAJORITY
from chaincode.protocol.ids import passport_id_for
from chaincode.protocol.key_moves import PASSPORT_MOVE
from chaincode.shim import (
    Context,
    Contract,
    create_composite_key,
    split_composite_key,
    transaction,
)

PASSPORT_OBJECT = "mip.passport"
FACE_COMMIT_OBJECT = "mip.facecommit"
ENROL_NONCE_OBJECT = "mip.enrolnonce"
VOUCH_OBJECT = "mip.vouch"  # (vouchee, voucher) -> vouch record
VOUCH_GIVEN_OBJECT = "mip.vouchgiven"  # (voucher, vouchee) -> "" (to find what a voucher gave)

ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"
# Screening of a provisional passport (record["screening"]["status"]).
SCREENING_PENDING, SCREENING_CLEARED, SCREENING_DUPLICATE = "pending", "cleared", "duplicate"
SCREENING_DECISIONS = {"clear": SCREENING_CLEARED, "duplicate": SCREENING_DUPLICATE}
PROVISIONAL_LEVEL = 1  # the highest level of a passport whose screening is pending
MAX_GUARDIANS = 10
MAX_REASON = 500
# A fraudulent revocation changes other orgs' passports (it flags vouches and demotes), so no
# single org decides it: registrars of a majority of the member orgs must propose it.
FRAUD_MAJORITY = MAJORITY  # the same majority as the chaincode's endorsement policy
# Clearing (or refusing) a provisional passport is the same kind of decision.
SCREENING_MAJORITY = MAJORITY
# Holder-signed requests reach the chaincode through a gateway identity; a registrar at a desk
# may also carry them.
HOLDER_CARRIERS = frozenset({"gateway", "registrar"})

_HEX64 = re.compile(r"[0-9a-f]{64}")
_REGISTER_FIELDS = {"face_commitment", "enrolment_nonce", "kyc_level", "guardians",
                    "guardian_threshold"}
_FACE_FIELDS = {"passport_id", "face_commitment", "previous"}


def passport_key(passport_id: str) -> str:
    return create_composite_key(PASSPORT_OBJECT, [passport_id])


def _check_id(passport_id: str) -> None:
    if not isinstance(passport_id, str) or not _HEX64.fullmatch(passport_id):
        raise InvalidRequest("passport id must be 64 lowercase hex characters")


def _public_key(text: Any, what: str) -> bytes:
    raw = unb64(text, what)
    if len(raw) != 32:
        raise InvalidRequest(f"{what} must be a 32-byte Ed25519 public key (base64)")
    return raw


def check_face_commitment(value: Any) -> str:
    """A face commitment: the hex sha256 of a protected face reference (never a template)."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidRequest("face_commitment must be a hex sha256 (64 lowercase hex chars)")
    return value


def face_commitment_key(commitment: str) -> str:
    return create_composite_key(FACE_COMMIT_OBJECT, [commitment])


async def require_unused_face_commitment(ctx: Context, commitment: str) -> None:
    """Conflict if a passport or an account has ever carried `commitment`.

    A commitment names one protected reference, and a reference belongs to one holder slot,
    so the same commitment on two records means a gateway reused a reference (or a replaced
    one is being brought back)."""
    if await ctx.stub.get_state(face_commitment_key(commitment)) is not None:
        raise Conflict("this face commitment is already registered")


async def claim_face_commitment(ctx: Context, commitment: str, owner: str) -> None:
    """Mark `commitment` used for good by `owner` (a passport id or an account pseudonym)."""
    await ctx.stub.put_state(face_commitment_key(commitment), owner.encode())


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidRequest(f"a reason of 1 to {MAX_REASON} characters is required")
    return reason


async def load_passport(ctx: Context, passport_id: str) -> dict[str, Any]:
    _check_id(passport_id)
    raw = await ctx.stub.get_state(passport_key(passport_id))
    if raw is None:
        raise NotFound(f"passport {passport_id} does not exist")
    record: dict[str, Any] = json.loads(raw)
    return record


async def passport_by_signer(ctx: Context, public_key: bytes) -> dict[str, Any]:
    """The passport whose current key is `public_key` (NotFound after rotation or if none)."""
    raw = await ctx.stub.get_state(passport_key_index(public_key))
    if raw is None:
        raise NotFound("no passport has this key")
    return await load_passport(ctx, raw.decode())


async def _save(ctx: Context, record: dict[str, Any]) -> None:
    record["updated"] = tx_unix_time(ctx)
    await ctx.stub.put_state(passport_key(record["id"]),
                             json.dumps(record, sort_keys=True).encode())


async def _active_vouch_count(ctx: Context, vouchee: str) -> int:
    count = 0
    async with ctx.stub.get_state_by_partial_composite_key(VOUCH_OBJECT, [vouchee]) as results:
        async for _key, value in results:
            if not json.loads(value)["flagged"]:
                count += 1
    return count


def _parse_register_body(body: dict[str, Any], signer: bytes) -> dict[str, Any]:
    if set(body) != _REGISTER_FIELDS:
        raise InvalidRequest(f"register body must have exactly {sorted(_REGISTER_FIELDS)}")
    face = check_face_commitment(body["face_commitment"])
    nonce = body["enrolment_nonce"]
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise InvalidRequest("enrolment_nonce must be a string of 16 to 128 characters")
    level = body["kyc_level"]
    if level not in (1, 2) or isinstance(level, bool):
        raise InvalidRequest("kyc_level at registration must be 1 or 2 (3 comes from vouches)")
    guardians = body["guardians"]
    if not isinstance(guardians, list) or len(guardians) > MAX_GUARDIANS:
        raise InvalidRequest(f"guardians must be a list of at most {MAX_GUARDIANS} keys")
    raw_guardians = [_public_key(g, "guardian") for g in guardians]
    if len(set(raw_guardians)) != len(raw_guardians) or signer in raw_guardians:
        raise InvalidRequest("guardians must be distinct and not the passport key itself")
    threshold = body["guardian_threshold"]
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        raise InvalidRequest("guardian_threshold must be an integer")
    if guardians and not 1 <= threshold <= len(guardians):
        raise InvalidRequest("guardian_threshold must be between 1 and the number of guardians")
    if not guardians and threshold != 0:
        raise InvalidRequest("guardian_threshold must be 0 when no guardians are named")
    return {"face_commitment": face, "enrolment_nonce": nonce, "kyc_level": level,
            "guardians": [b64(g) for g in raw_guardians], "guardian_threshold": threshold}


def is_provisional(record: dict[str, Any]) -> bool:
    """A passport whose duplicate screening is still pending (level capped at 1)."""
    screening = record.get("screening")
    return isinstance(screening, dict) and screening.get("status") == SCREENING_PENDING


async def _guardian_signing(ctx: Context, guardians: list[bytes], signer: bytes) -> bytes:
    """The named guardian key an approval by `signer` counts for (AccessDenied if none).

    A guardian is named by the key they had when the holder registered. If that key is still
    theirs (not retired), it approves. If it moved away (the guardian's own `MoveKey` onto
    their device, or their `RotateKey` recovery), the retired key approves no more (its
    custodial copy, or a stolen device, must not speak for the guardian) and the approval must
    come from the current key of the passport the named key belonged to: the passport's
    `retired_keys`, or its id (sha256 of the key it was registered with).
    """
    if signer in guardians:
        if await ctx.stub.get_state(retired_key_index(signer)) is not None:
            raise AccessDenied("this guardian key moved away; the guardian's current passport "
                               "key must approve")
        return signer
    owner = await ctx.stub.get_state(passport_key_index(signer))
    if owner is not None:
        passport = await load_passport(ctx, owner.decode())
        history = {unb64(k, "retired key") for k in passport.get("retired_keys", [])}
        for guardian in guardians:
            if guardian in history or passport_id_for(guardian) == passport["id"]:
                return guardian
    raise AccessDenied("an approval is not signed by a guardian of this passport")


class PassportContract(Contract):
    """Passport registration, vouching, suspension/revocation and guardian recovery."""

    name = "Passport"

    @transaction()
    async def Register(self, ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        """Register a passport; `request` is signed by the new passport key (passport.register)."""
        staff = require_staff(ctx, {"registrar"})
        holder = await verify_holder_request(ctx, request, "passport.register")
        fields = _parse_register_body(holder.body, holder.signer)
        passport_id = passport_id_for(holder.signer)
        nonce_key = create_composite_key(ENROL_NONCE_OBJECT, [fields["enrolment_nonce"]])
        if await ctx.stub.get_state(passport_key(passport_id)) is not None:
            raise Conflict("a passport with this key already exists")
        if await key_in_use(ctx, holder.signer):
            raise Conflict("this key already speaks for a passport or an account")
        await require_unused_face_commitment(ctx, fields["face_commitment"])
        if await ctx.stub.get_state(nonce_key) is not None:
            raise Conflict("this enrolment nonce was already used")
        now = tx_unix_time(ctx)
        record = {
            "id": passport_id,
            "public_key": b64(holder.signer),
            "face_commitment": fields["face_commitment"],
            "enrolling_org": staff.msp_id,
            "kyc_level": fields["kyc_level"],
            "status": ACTIVE,
            "status_reason": "",
            "guardians": fields["guardians"],
            "guardian_threshold": fields["guardian_threshold"],
            "created": now,
            "key_version": 1,
        }
        if await get_setting(ctx, "screening_required"):
            record["kyc_level"] = min(fields["kyc_level"], PROVISIONAL_LEVEL)
            record["screening"] = {"status": SCREENING_PENDING,
                                   "level_on_clear": fields["kyc_level"], "decisions": []}
        # No key-level policy: the passport stays under the chaincode's majority, so neither
        # the enrolling org nor any other can change its key, level or status alone.
        await _save(ctx, record)
        await ctx.stub.put_state(passport_key_index(holder.signer), passport_id.encode())
        await claim_face_commitment(ctx, fields["face_commitment"], passport_id)
        await ctx.stub.put_state(nonce_key, passport_id.encode())
        return record

    @transaction(read_only=True)
    async def Get(self, ctx: Context, passport_id: str) -> dict[str, Any]:
        """The public passport record (any member-org identity)."""
        if caller(ctx).msp_id not in MEMBER_ORGS:
            raise AccessDenied("only member organisations read passports")
        record = await load_passport(ctx, passport_id)
        record["vouches"] = await _active_vouch_count(ctx, passport_id)
        return record

    @transaction()
    async def Vouch(self, ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        """A level-2+ passport vouches for another (request signed by the VOUCHER's key).

        Any member org may carry it (the desk where the voucher stands); the chaincode's
        majority endorses it, reaching k vouches changing the vouchee's level included.
        """
        require_staff(ctx, HOLDER_CARRIERS)
        holder = await verify_holder_request(ctx, request, "passport.vouch")
        if set(holder.body) != {"vouchee"}:
            raise InvalidRequest("vouch body must be exactly {vouchee}")
        voucher = await passport_by_signer(ctx, holder.signer)
        vouchee = await load_passport(ctx, holder.body["vouchee"])
        if voucher["id"] == vouchee["id"]:
            raise InvalidRequest("a passport cannot vouch for itself")
        if voucher["status"] != ACTIVE:
            raise PreconditionFailed(f"the voucher's passport is {voucher['status']}")
        for who, record in (("voucher", voucher), ("vouchee", vouchee)):
            if is_provisional(record):
                raise PreconditionFailed(f"the {who}'s passport is provisional: its duplicate "
                                         "screening has not cleared")
        if voucher["kyc_level"] < 2:
            raise PreconditionFailed("only passports of level 2 or more can vouch")
        if vouchee["status"] != ACTIVE:
            raise PreconditionFailed(f"the vouchee's passport is {vouchee['status']}")
        if vouchee["kyc_level"] < 2:
            raise PreconditionFailed("level 3 needs level 2 first (face and password)")
        vouch_key = create_composite_key(VOUCH_OBJECT, [vouchee["id"], voucher["id"]])
        if await ctx.stub.get_state(vouch_key) is not None:
            raise Conflict("this passport has already vouched for that one")
        now = tx_unix_time(ctx)
        await ctx.stub.put_state(vouch_key, json.dumps(
            {"vouchee": vouchee["id"], "voucher": voucher["id"], "time": now, "flagged": False},
            sort_keys=True).encode())
        await ctx.stub.put_state(
            create_composite_key(VOUCH_GIVEN_OBJECT, [voucher["id"], vouchee["id"]]), b"\x00")
        count = await _active_vouch_count(ctx, vouchee["id"]) + 1  # own write is not yet visible
        k = await get_setting(ctx, "vouch_k")
        if count >= k and vouchee["kyc_level"] == 2:
            vouchee["kyc_level"] = 3
            await _save(ctx, vouchee)
        return {"vouchee": vouchee["id"], "vouches": count, "vouch_k": k,
                "kyc_level": vouchee["kyc_level"]}

    @transaction()
    async def Screen(self, ctx: Context, passport_id: str, decision: str,
                     reason: str) -> dict[str, Any]:
        """Record this org's outcome of a provisional passport's duplicate screening
        (`decision` "clear" or "duplicate"; a registrar of any member org, once per org).

        Decisions live in the passport record, so two concurrent ones conflict (MVCC)
        instead of both committing unaware of each other. At a majority of orgs agreeing the
        screening is decided: cleared (the level the desk attested) or duplicate (revoked).
        The result has `screening_pending` true while no decision has a majority."""
        staff = require_staff(ctx, {"registrar"})
        reason = _reason(reason)
        if decision not in SCREENING_DECISIONS:
            raise InvalidRequest(f"decision must be one of {sorted(SCREENING_DECISIONS)}")
        record = await load_passport(ctx, passport_id)
        if not is_provisional(record):
            raise PreconditionFailed("this passport has no pending duplicate screening")
        screening: dict[str, Any] = record["screening"]
        decisions: list[dict[str, Any]] = screening["decisions"]
        if any(d["org"] == staff.msp_id for d in decisions):
            raise Conflict(f"{staff.msp_id} has already decided this screening")
        decisions.append({"org": staff.msp_id, "client_id": staff.client_id,
                          "decision": decision, "reason": reason,
                          "time": tx_unix_time(ctx), "tx_id": ctx.stub.tx_id})
        agreeing = {d["org"] for d in decisions if d["decision"] == decision}
        if len(agreeing) >= SCREENING_MAJORITY:
            screening["status"] = SCREENING_DECISIONS[decision]
            if decision == "clear":
                record["kyc_level"] = screening["level_on_clear"]
            else:
                record["status"] = REVOKED
                record["status_reason"] = "duplicate: " + reason
        await _save(ctx, record)
        return {**record, "screening_pending": is_provisional(record)}

    async def _set_status(self, ctx: Context, passport_id: str, reason: str,
                          allowed_from: set[str], status: str) -> dict[str, Any]:
        """Change the status as a registrar of the passport's enrolling org.

        The passport is that org's record: another org's registrar (even honest) has no say
        in its suspension or ordinary revocation; fraud goes through `_propose_fraud`.
        """
        staff = require_staff(ctx, {"registrar"})
        reason = _reason(reason)
        record = await load_passport(ctx, passport_id)
        if staff.msp_id != record["enrolling_org"]:
            raise AccessDenied(f"only a registrar of the enrolling org {record['enrolling_org']} "
                               "may change this passport's status")
        if record["status"] not in allowed_from:
            raise PreconditionFailed(f"passport is {record['status']}; cannot become {status}")
        record["status"] = status
        record["status_reason"] = reason
        await _save(ctx, record)
        return record

    @transaction()
    async def Suspend(self, ctx: Context, passport_id: str, reason: str) -> dict[str, Any]:
        """Suspend an active passport (a registrar of its enrolling org)."""
        return await self._set_status(ctx, passport_id, reason, {ACTIVE}, SUSPENDED)

    @transaction()
    async def Reinstate(self, ctx: Context, passport_id: str, reason: str) -> dict[str, Any]:
        """Reinstate a suspended passport (a registrar of its enrolling org)."""
        return await self._set_status(ctx, passport_id, reason, {SUSPENDED}, ACTIVE)

    @transaction()
    async def Revoke(
        self, ctx: Context, passport_id: str, reason: str, fraudulent: bool
    ) -> dict[str, Any]:
        """Revoke for good (a registrar of the enrolling org), or propose a fraudulent
        revocation (a registrar of any org; effective once a majority of orgs proposed it).

        The result has `fraud_pending` true while a fraud proposal still lacks a majority.
        """
        if not isinstance(fraudulent, bool):
            raise InvalidRequest("fraudulent must be true or false")
        if fraudulent:
            return await self._propose_fraud(ctx, passport_id, reason)
        record = await self._set_status(ctx, passport_id, reason, {ACTIVE, SUSPENDED}, REVOKED)
        record["fraudulent"] = False
        await _save(ctx, record)
        return {**record, "fraud_pending": False, "flagged_vouches": [], "demoted": []}

    async def _propose_fraud(self, ctx: Context, passport_id: str,
                             reason: str) -> dict[str, Any]:
        """Record this org's fraud proposal; at a majority of orgs, revoke as fraudulent.

        Proposals live in the passport record itself, so two concurrent proposals conflict
        (MVCC) instead of both committing unaware of each other and leaving a majority that
        never took effect. A passport already revoked in the ordinary way may still be found
        fraudulent: otherwise its enrolling org could shield the vouches it gave by revoking
        it first.
        """
        staff = require_staff(ctx, {"registrar"})
        reason = _reason(reason)
        record = await load_passport(ctx, passport_id)
        if record["status"] == REVOKED and record.get("fraudulent"):
            raise PreconditionFailed("passport is already revoked as fraudulent")
        proposals: list[dict[str, Any]] = record.setdefault("fraud_proposals", [])
        if any(p["org"] == staff.msp_id for p in proposals):
            raise Conflict(f"{staff.msp_id} has already proposed this fraudulent revocation")
        proposals.append({"org": staff.msp_id, "client_id": staff.client_id, "reason": reason,
                          "time": tx_unix_time(ctx), "tx_id": ctx.stub.tx_id})
        if len({p["org"] for p in proposals}) < FRAUD_MAJORITY:
            await _save(ctx, record)
            return {**record, "fraud_pending": True, "flagged_vouches": [], "demoted": []}
        record["status"] = REVOKED
        record["status_reason"] = reason
        record["fraudulent"] = True
        await _save(ctx, record)
        flagged, demoted = await self._flag_vouches_of(ctx, passport_id)
        return {**record, "fraud_pending": False, "flagged_vouches": flagged,
                "demoted": demoted}

    async def _flag_vouches_of(self, ctx: Context,
                               passport_id: str) -> tuple[list[str], list[str]]:
        """Flag every vouch `passport_id` gave; demote vouchees left below k from level 3."""
        flagged: list[str] = []
        demoted: list[str] = []
        vouchees = []
        async with ctx.stub.get_state_by_partial_composite_key(
            VOUCH_GIVEN_OBJECT, [passport_id]
        ) as results:
            async for key, _value in results:
                vouchees.append(split_composite_key(key)[1][1])
        k = await get_setting(ctx, "vouch_k")
        for vouchee_id in vouchees:
            vouch_key = create_composite_key(VOUCH_OBJECT, [vouchee_id, passport_id])
            raw = await ctx.stub.get_state(vouch_key)
            if raw is None:
                continue
            vouch = json.loads(raw)
            if vouch["flagged"]:
                continue
            vouch["flagged"] = True
            vouch["flag_reason"] = "voucher revoked as fraudulent"
            await ctx.stub.put_state(vouch_key, json.dumps(vouch, sort_keys=True).encode())
            flagged.append(vouchee_id)
            # The flag just written is not visible to this transaction's reads.
            remaining = await _active_vouch_count(ctx, vouchee_id) - 1
            vouchee = await load_passport(ctx, vouchee_id)
            if vouchee["kyc_level"] == 3 and remaining < k:
                vouchee["kyc_level"] = 2
                await _save(ctx, vouchee)
                demoted.append(vouchee_id)
        return flagged, demoted

    @transaction()
    async def RotateKey(
        self, ctx: Context, passport_id: str, new_public_key: str, approvals: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Recovery: replace the passport key with k-of-n guardian approvals (passport.rotate).

        Each approval counts for one named guardian (`_guardian_signing`); the old key goes to
        the record's `retired_keys` and is retired for good, as after a move."""
        require_staff(ctx, HOLDER_CARRIERS)
        record = await load_passport(ctx, passport_id)
        if record["status"] == REVOKED:
            raise PreconditionFailed("a revoked passport cannot be recovered")
        threshold = record["guardian_threshold"]
        if threshold < 1:
            raise PreconditionFailed("this passport named no guardians")
        new_key = _public_key(new_public_key, "new_public_key")
        if await key_in_use(ctx, new_key):
            raise Conflict("the new key already speaks for a passport or an account")
        if not isinstance(approvals, list) or len(approvals) > MAX_GUARDIANS:
            raise InvalidRequest("approvals must be a list of guardian-signed requests")
        guardians = [unb64(g, "guardian") for g in record["guardians"]]
        expected_body = {"passport_id": passport_id, "new_public_key": b64(new_key)}
        signers: set[bytes] = set()
        counted: set[bytes] = set()
        for approval in approvals:
            request = await verify_holder_request(ctx, approval, "passport.rotate")
            if request.body != expected_body:
                raise InvalidRequest("an approval is for another passport or key")
            guardian = await _guardian_signing(ctx, guardians, request.signer)
            if request.signer in signers or guardian in counted:
                raise InvalidRequest("each guardian may approve once")
            signers.add(request.signer)
            counted.add(guardian)
        if len(counted) < threshold:
            raise AccessDenied(f"{len(counted)} guardian approvals; {threshold} needed")
        old_key = unb64(record["public_key"], "public_key")
        await ctx.stub.del_state(passport_key_index(old_key))
        # The replaced key (a lost or stolen device's, or a custodial one) speaks for nothing
        # again: it neither approves as a guardian nor registers anything.
        await retire_key(ctx, old_key)
        await ctx.stub.put_state(passport_key_index(new_key), passport_id.encode())
        record["retired_keys"] = [*record.get("retired_keys", []), record["public_key"]]
        record["public_key"] = b64(new_key)
        record["key_version"] += 1
        await _save(ctx, record)
        return record

    @transaction()
    async def MoveKey(self, ctx: Context, passport_id: str, request: dict[str, Any],
                      confirmation: dict[str, Any]) -> dict[str, Any]:
        """The holder moves the passport to a new key: `request` signed by the passport key on
        record and `confirmation` by the new key, both `passport.move` over the same body
        {passport_id, new_public_key}. The passport must be active. The old key is retired
        (it speaks for nothing again); the id, guardians and face commitment stay, so guardian
        recovery (`RotateKey`) still works. Any carrier org may carry it; the chaincode's
        majority endorses it, as every passport write."""
        require_staff(ctx, HOLDER_CARRIERS)
        record = await load_passport(ctx, passport_id)
        if record["status"] != ACTIVE:
            raise PreconditionFailed(f"passport is {record['status']}")
        old_key = unb64(record["public_key"], "public_key")
        new_key = await verify_key_move(ctx, PASSPORT_MOVE, old_key, {"passport_id": passport_id},
                                        request, confirmation)
        await ctx.stub.del_state(passport_key_index(old_key))
        await retire_key(ctx, old_key)
        await ctx.stub.put_state(passport_key_index(new_key), passport_id.encode())
        record["retired_keys"] = [*record.get("retired_keys", []), record["public_key"]]
        record["public_key"] = b64(new_key)
        record["key_version"] += 1
        record["key_moved"] = tx_unix_time(ctx)
        await _save(ctx, record)
        return record

    @transaction()
    async def SetFaceCommitment(
        self, ctx: Context, passport_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace the passport's face commitment after its reference was re-enrolled.

        `request` is signed by the passport key on record (`passport.face`, body exactly
        {passport_id, face_commitment, previous}); carried by a gateway or registrar of the
        enrolling org, whose gateway holds the reference. `previous` must be the current
        commitment (a stale request cannot undo a newer change); the new one must never have
        been used, and the old one stays used.
        """
        staff = require_staff(ctx, HOLDER_CARRIERS)
        record = await load_passport(ctx, passport_id)
        if staff.msp_id != record["enrolling_org"]:
            raise AccessDenied(f"only the enrolling org {record['enrolling_org']} holds this "
                               "passport's face reference")
        holder = await verify_holder_request(
            ctx, request, "passport.face",
            expected_signer=unb64(record["public_key"], "public_key"))
        body = holder.body
        if set(body) != _FACE_FIELDS:
            raise InvalidRequest(f"face body must have exactly {sorted(_FACE_FIELDS)}")
        if body["passport_id"] != passport_id:
            raise InvalidRequest("the request is for another passport")
        new = check_face_commitment(body["face_commitment"])
        previous = check_face_commitment(body["previous"])
        if record["status"] != ACTIVE:
            raise PreconditionFailed(f"passport is {record['status']}")
        if previous != record["face_commitment"]:
            raise Conflict("previous is not the passport's current face commitment")
        await require_unused_face_commitment(ctx, new)
        record["face_commitment"] = new
        await _save(ctx, record)
        await claim_face_commitment(ctx, new, passport_id)
        return record
