"""Guardian rotation of a moved passport: collecting the guardians' signed approvals for the
ledger's `Passport:RotateKey` (docs/gateway.md, "Guardian rotation of a moved passport").

After `Passport:MoveKey` the passport key is on the holder's device and the desk's custodial
secret controls nothing, so the desk's guardian recovery (holder_recovery.py, which rebuilds
that secret) no longer helps a holder who lost the device. The ledger's own recovery does:
`Passport:RotateKey(passport_id, new_public_key, approvals)` with k of the named guardians'
`passport.rotate` requests over {passport_id, new_public_key}. This module collects them:

1. `start`: the holder's new device key (the wallet makes it) signs `passport.rotate-request`
   over {passport_id, new_public_key = itself}: proof that whoever asks holds the new key.
   The passport must have moved (its key is not the one it was registered with; otherwise
   409 `passport_not_moved`: the custodial recovery applies) and name guardians. The gateway
   keeps the request with a deadline `expires` (its clock + ROTATION_TTL_S, under the
   contract's MAX_REQUEST_TTL_S) that every approval must carry: the contract refuses a
   holder request that lives longer, so k guardians approve within that window.
2. `approve`: each guardian signs `passport.rotate` over the request's body with its
   `expires`, either at a desk of the org that enrolled them (their own level-2 holder
   session: `approve_at_desk`, the custodial passport key signs; `sign_at_desk` when another
   gateway holds the request) or on their device (`approve_signed`, e.g. a guardian whose
   own passport key moved). Never through the custody relay at another org's desk: that org
   would compose what the custodian signs. The approval must be signed by the current key
   of the guardian's passport, and that passport must be one the holder named (by the key
   named, the keys it moved away from, or its id): as the contract checks
   (chaincode/mip/passports.py, `_guardian_signing`). A retired custodial copy of a
   guardian key approves nothing.
3. At k approvals the gateway carries `Passport:RotateKey` with them (`submit` retries one
   the ledger refused for a passing reason; 409 `too_few_approvals` before k).

Nothing here is secret: the approvals are signatures the ledger makes public anyway. A
dishonest gateway collecting them can forge none and cannot swap the new key (each guardian
signed it, and the contract checks every signature, nonce and expiry on every endorser). What
it can do is withhold approvals or not submit: the holder starts again at another org's
gateway. A guardian's custodian signs that guardian's approval (it holds the key): an org
that custodies k of a holder's guardians could rotate the holder's passport alone (stated,
not enforced: a holder who moved away from custody names guardians enrolled at several orgs,
or guardians who moved their own keys; docs/gateway.md).

Refusals: unknown request (404 `rotation_not_found`), expired (410 `rotation_expired`),
finished (409 `rotation_finished`), not a guardian (403 `not_a_guardian`), a guardian whose
named key moved signing with it (409 `guardian_key_moved`: sign on the device), a second
approval of one guardian (409 `already_approved`), too few approvals (409
`too_few_approvals`), a passport not moved (409 `passport_not_moved`), without guardians (409
`no_guardians`), revoked (409 `passport_inactive`), an approval of another body or deadline
(422 `request_mismatch`), a guardian at another org's desk (409 `custody_elsewhere`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from chaincode.protocol.encoding import b64
from chaincode.protocol.holder_requests import MAX_REQUEST_TTL_S
from chaincode.protocol.ids import passport_id_for
from gateway.core.errors import (
    Conflict,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    chaincode_error,
)
from gateway.fabric import ChaincodeError

from .custody_client import RemoteHolderSession
from .holder_requests import check_signed
from .holders import HolderSession
from .ledger_reads import json_object, public_reader
from .wallet_views import verify_signed

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.guardian_rotation")

SCHEMA = """
CREATE TABLE IF NOT EXISTS guardian_rotations (
    rotation_id TEXT PRIMARY KEY,
    passport_id TEXT NOT NULL,
    new_public_key TEXT NOT NULL,
    expires INTEGER NOT NULL,   -- unix s, every approval's `expires`
    threshold INTEGER NOT NULL,
    guardians TEXT NOT NULL,    -- JSON: the guardian keys the passport names (ledger, at start)
    status TEXT NOT NULL,       -- open | rotated
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS guardian_rotations_passport ON guardian_rotations (passport_id);
-- One signed `passport.rotate` per named guardian key (public once on the ledger).
CREATE TABLE IF NOT EXISTS guardian_rotation_approvals (
    rotation_id TEXT NOT NULL,
    guardian TEXT NOT NULL,
    approval TEXT NOT NULL,
    PRIMARY KEY (rotation_id, guardian)
);
"""

ROTATE = "passport.rotate"  # what guardians sign; the contract verifies it
ROTATION_REQUEST = "passport.rotate-request"  # the new key's proof of possession (gateway only)
# Under the contract's bound with room for the gateway's and endorsers' clocks to differ.
ROTATION_TTL_S = MAX_REQUEST_TTL_S - 60
# Requests left unfinished are deleted this long after their deadline (with their approvals):
# anyone may ask (the new key's signature is the only credential), so the table is bounded by
# the per-address rate limit (gateway/core/rate_limits.py) times this, not by a per-passport
# cap, which a stranger could fill to block the holder's own request.
KEEP_EXPIRED_S = 3600


def rotation_body(passport_id: str, new_public_key: str) -> dict[str, Any]:
    """The body every approval (and the contract) has: {passport_id, new_public_key}."""
    return {"passport_id": passport_id, "new_public_key": new_public_key}


def _raw_key(value: Any, what: str) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{what} must be base64", code="request_mismatch") from None
    if len(raw) != 32 or b64(raw) != value:
        raise InvalidRequest(f"{what} must be a 32-byte Ed25519 public key",
                             code="request_mismatch")
    return raw


class GuardianRotations:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)

    async def _passport(self, passport_id: str) -> dict[str, Any]:
        try:
            return json_object(await public_reader(self.state).evaluate(
                "Passport:Get", [passport_id]))
        except ChaincodeError as exc:
            if chaincode_error(exc).code == "not_found":
                raise NotFound("no such passport", code="passport_not_found") from None
            raise

    # --- 1. the holder asks -----------------------------------------------------------------
    async def start(self, passport_id: str, signed: dict[str, Any]) -> dict[str, Any]:
        """A rotation request for `passport_id` to the key that signed `signed`."""
        check_signed(signed, ROTATION_REQUEST, passport_id=passport_id)
        body = signed["body"]
        if set(body) != {"passport_id", "new_public_key"}:
            raise InvalidRequest("the body is exactly {passport_id, new_public_key}",
                                 code="request_mismatch")
        new_key = _raw_key(body["new_public_key"], "new_public_key")
        if verify_signed(signed, ROTATION_REQUEST, self.state.settings.channel) != new_key:
            raise InvalidRequest("the request must be signed by the new key",
                                 code="request_mismatch")
        record = await self._passport(passport_id)
        if record.get("status") == "revoked":
            raise Conflict("a revoked passport is not recovered", code="passport_inactive")
        if passport_id_for(_raw_key(record["public_key"], "public_key")) == passport_id:
            raise Conflict("this passport's key is still the one the desk keeps: recover it "
                           "with the desk's guardian recovery", code="passport_not_moved")
        threshold = int(record.get("guardian_threshold", 0))
        if threshold < 1:
            raise Conflict("this passport named no guardians", code="no_guardians")
        now = time.time()
        with self.db.transaction() as conn:
            stale = (int(now) - KEEP_EXPIRED_S,)
            conn.execute("DELETE FROM guardian_rotation_approvals WHERE rotation_id IN ("
                         "SELECT rotation_id FROM guardian_rotations WHERE status = 'open' "
                         "AND expires < ?)", stale)
            conn.execute("DELETE FROM guardian_rotations WHERE status = 'open' AND "
                         "expires < ?", stale)
            rotation_id = secrets.token_hex(16)
            conn.execute(
                "INSERT INTO guardian_rotations VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                (rotation_id, passport_id, body["new_public_key"], int(now) + ROTATION_TTL_S,
                 threshold, json.dumps(record["guardians"]), now))
        log.info("guardian rotation requested for a moved passport")
        return self.view(rotation_id)

    # --- reads ------------------------------------------------------------------------------
    def _row(self, rotation_id: str) -> Any:
        row = self.db.query_one("SELECT * FROM guardian_rotations WHERE rotation_id = ?",
                                (rotation_id,))
        if row is None:
            raise NotFound("no such rotation request", code="rotation_not_found")
        return row

    def _approvals(self, rotation_id: str) -> dict[str, dict[str, Any]]:
        rows = self.db.query(
            "SELECT guardian, approval FROM guardian_rotation_approvals WHERE rotation_id = ?",
            (rotation_id,))
        return {str(r["guardian"]): json.loads(r["approval"]) for r in rows}

    def view(self, rotation_id: str) -> dict[str, Any]:
        """What a guardian signs (action, body, expires) and how far the request is."""
        row = self._row(rotation_id)
        approvals = self._approvals(rotation_id)
        return {"rotation_id": rotation_id, "passport_id": row["passport_id"],
                "action": ROTATE, "body": rotation_body(row["passport_id"],
                                                        row["new_public_key"]),
                "expires": int(row["expires"]), "threshold": int(row["threshold"]),
                "guardians": json.loads(row["guardians"]), "approved": sorted(approvals),
                "status": row["status"]}

    def _open(self, rotation_id: str) -> Any:
        row = self._row(rotation_id)
        if row["status"] != "open":
            raise Conflict("this passport was already rotated by this request",
                           code="rotation_finished")
        if time.time() > int(row["expires"]):
            raise Gone("the rotation request expired; the holder starts another",
                       code="rotation_expired")
        return row

    # --- 2. guardians approve ---------------------------------------------------------------
    async def approve_at_desk(self, session: HolderSession, rotation_id: str
                              ) -> dict[str, Any]:
        """The guardian's own level-2 desk session signs with the custodial passport key."""
        row = self._open(rotation_id)
        approval = await self.sign_at_desk(session, str(row["passport_id"]),
                                           str(row["new_public_key"]), int(row["expires"]))
        return await self._add(row, session.pid, approval)

    async def sign_at_desk(self, session: HolderSession, passport_id: str,
                           new_public_key: str, expires: int) -> dict[str, Any]:
        """The guardian's approval signed by the custodial passport key at the desk of the
        org that keeps it, for a rotation request another gateway holds: whoever carries
        it there posts it to that gateway's `approve_signed`.

        Only the guardian's own custodian signs: at another org's desk (RemoteHolderSession)
        that org would compose what the custodian signs and could put its own key in it, a
        power over the passport the desk's org does not otherwise have; the custodian holds
        the guardian's custodial key anyway (409 `custody_elsewhere`)."""
        session.require_level(2)
        if isinstance(session, RemoteHolderSession):
            raise Conflict("approve at the desk of the org that enrolled you, or on your "
                           "device", code="custody_elsewhere")
        if session.pid == passport_id:
            raise Forbidden("a holder is not their own guardian", code="not_a_guardian")
        _raw_key(new_public_key, "new_public_key")
        if not time.time() < expires <= time.time() + MAX_REQUEST_TTL_S:
            raise InvalidRequest(f"expires must be within {MAX_REQUEST_TTL_S} s from now",
                                 code="request_mismatch")
        return await session.passport_signed(
            ROTATE, rotation_body(passport_id, new_public_key), expires=expires)

    async def approve_signed(self, rotation_id: str, guardian_passport_id: str,
                             approval: dict[str, Any]) -> dict[str, Any]:
        """An approval the guardian's device signed (their passport key moved there)."""
        row = self._open(rotation_id)
        return await self._add(row, guardian_passport_id, approval)

    async def _add(self, row: Any, guardian_pid: str, approval: dict[str, Any]
                   ) -> dict[str, Any]:
        rotation_id = str(row["rotation_id"])
        check_signed(approval, ROTATE, **rotation_body(row["passport_id"],
                                                       row["new_public_key"]))
        if set(approval["body"]) != {"passport_id", "new_public_key"}:
            raise InvalidRequest("the body is exactly {passport_id, new_public_key}",
                                 code="request_mismatch")
        if approval.get("expires") != int(row["expires"]):
            raise InvalidRequest("the approval must expire with the request",
                                 code="request_mismatch")
        signer = verify_signed(approval, ROTATE, self.state.settings.channel)
        named = await self._named_guardian(guardian_pid, signer, json.loads(row["guardians"]))
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM guardian_rotation_approvals WHERE rotation_id = ? "
                            "AND guardian = ?", (rotation_id, named)).fetchone():
                raise Conflict("this guardian already approved", code="already_approved")
            conn.execute("INSERT INTO guardian_rotation_approvals VALUES (?, ?, ?)",
                         (rotation_id, named, json.dumps(approval)))
        log.info("guardian approval collected for a rotation request")
        if len(self._approvals(rotation_id)) >= int(row["threshold"]):
            return await self.submit(rotation_id)
        return self.view(rotation_id)

    async def _named_guardian(self, guardian_pid: str, signer: bytes,
                              guardians: list[str]) -> str:
        """The named guardian key (base64) that `signer`, the current key of passport
        `guardian_pid`, approves for; the contract's rule, checked ahead."""
        record = await self._passport(guardian_pid)
        current = _raw_key(record["public_key"], "public_key")
        history = {current, *(_raw_key(k, "retired key") for k in
                              record.get("retired_keys", []))}
        if signer not in history:
            raise Forbidden("the approval is not signed by that passport's key",
                            code="not_a_guardian")
        if signer != current:
            raise Conflict("this guardian's passport key moved; approve with the key on the "
                           "device", code="guardian_key_moved")
        for name in guardians:
            raw = _raw_key(name, "guardian")
            if raw in history or passport_id_for(raw) == guardian_pid:
                return str(name)
        raise Forbidden("not a guardian of this passport", code="not_a_guardian")

    # --- 3. the ledger rotates ---------------------------------------------------------------
    async def submit(self, rotation_id: str) -> dict[str, Any]:
        """`Passport:RotateKey` with the collected approvals (k of them at least)."""
        row = self._open(rotation_id)
        approvals = list(self._approvals(rotation_id).values())
        if len(approvals) < int(row["threshold"]):
            raise Conflict(f"{len(approvals)} approvals; {row['threshold']} needed",
                           code="too_few_approvals")
        try:
            await public_reader(self.state).submit(
                "Passport:RotateKey",
                [row["passport_id"], row["new_public_key"], json.dumps(approvals)])
        except ChaincodeError:
            # Two last approvals at once: the other one's submission rotated it already.
            record = await self._passport(str(row["passport_id"]))
            if record.get("public_key") != row["new_public_key"]:
                raise
        with self.db.transaction() as conn:
            conn.execute("UPDATE guardian_rotations SET status = 'rotated' WHERE "
                         "rotation_id = ?", (rotation_id,))
        log.info("moved passport rotated to a new key by its guardians")
        return self.view(rotation_id)


def guardian_rotations(state: AppState) -> GuardianRotations:
    return state.service("guardian_rotations", GuardianRotations)
