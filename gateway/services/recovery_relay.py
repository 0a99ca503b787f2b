"""Guardian recovery at another org's desk (docs/gateway.md, "Holders at another org's desk").

Three roles, each a member org's gateway, any two of which may be the same org:

- the holder's custodian E (the org that enrolled them): holds the guardians' sealed shares,
  the passport's face reference and the vault. It runs the recovery (holder_recovery.py,
  `Recovery.caller_org` naming the desk's org), combines the shares, matches the live face
  against its own reference, rewraps the vault (version 3, password_hardening.py), and, for
  a face that changed, makes the new reference from the relayed capture and carries
  `Passport:SetFaceCommitment` (signed by the recovered passport key) with its own identity;
- the desk's org O: runs the face challenge with its own engine (liveness) and relays the
  live embedding and the new password to E (`RemoteRecovery` here, bound to the staff member
  who started it); it never sees a share, a sealed share, the master secret or a reference;
- each guardian's custodian G (the org that enrolled the guardian): holds the guardian's
  passport key while the guardian's level-2 session is open. It asks E for the one sealed
  share addressed to that guardian (E hands it only to the org the ledger names as the
  guardian's enrolling org), opens it with the guardian's key and sends the mnemonic back
  to E, in two signed requests (gateway/core/peer_auth.py). The opened mnemonic goes back
  only to the org that presented the sealed box; O never sees it unless O is G.

What each learns: G learns its guardian's one share (it could open that sealed box with the
guardian's key anyway, were it ever handed the box; a single SLIP-39 share below the
threshold says nothing of the secret). E learns what it holds already (the master secret at
every unlock). O learns that the holder recovered, the live face (its own capture) and the
new password typed at its desk, as for any unlock there.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.core.errors import Conflict, Forbidden, Gone, NotFound
from gateway.core.security import StaffMember
from gateway.holder import recovery
from gateway.holder.errors import RecoveryError

from .custody import encode_embedding
from .custody_client import RemoteHolderSession, custody_client
from .face_frames import challenge_frames
from .faces import IssuedChallenge, face_service
from .holders import HolderSession, holder_service
from .ledger_reads import json_object

if TYPE_CHECKING:
    from .holder_recovery import RecoveryResult, RecoveryService
    from .state import AppState

log = logging.getLogger("mip.gateway.recovery")


class NotGuardiansCustodian(Forbidden):
    """A share asked for, or given, by an org other than the guardian's enrolling org."""

    code = "not_guardians_custodian"


@dataclass
class RemoteRecovery:
    """A recovery this desk runs for a holder enrolled at `custodian` (E runs the rest)."""

    recovery_id: str  # this desk's id (the custodian's handle never leaves this gateway)
    staff: StaffMember
    passport_id: str
    custodian: str
    handle: str
    challenge_id: str
    guardians: list[str]
    threshold: int
    expires: float
    shares: int = 0

    @property
    def expired(self) -> bool:
        return time.time() > self.expires


# --- the desk's org (O) ----------------------------------------------------------------------
async def start_remote(service: RecoveryService, staff: StaffMember, passport_id: str
                       ) -> tuple[RemoteRecovery, IssuedChallenge]:
    from .holder_recovery import RECOVERY_PURPOSE, RECOVERY_TTL_S

    state = service.state
    custodian = await holder_service(state)._custodian(passport_id)
    if custodian is None:
        raise NotFound("no passport of that id is enrolled at this gateway",
                       code="passport_not_found")
    out = await custody_client(state).call(custodian, "/recoveries",
                                           {"passport_id": passport_id})
    recovery_id = secrets.token_hex(32)
    challenge = face_service(state).issue_challenge(RECOVERY_PURPOSE, recovery_id)
    remote = RemoteRecovery(
        recovery_id, staff, passport_id, custodian, str(out["handle"]),
        challenge.challenge_id, [str(g) for g in out["guardians"]], int(out["threshold"]),
        time.time() + min(RECOVERY_TTL_S, float(out["expires_in_s"])))
    service._remote[recovery_id] = remote
    log.info("recovery started at the enrolling org's gateway (%d guardians, k=%d)",
             len(remote.guardians), remote.threshold)
    return remote, challenge


def _own(service: RecoveryService, remote: RemoteRecovery, staff: StaffMember
         ) -> RemoteRecovery:
    if remote.staff != staff:
        raise NotFound("no such recovery", code="recovery_not_found")
    if remote.expired:
        service._remote.pop(remote.recovery_id, None)
        raise Gone("the recovery expired; start again", code="recovery_expired")
    return remote


def new_remote_challenge(service: RecoveryService, remote: RemoteRecovery,
                         staff: StaffMember) -> IssuedChallenge:
    from .holder_recovery import RECOVERY_PURPOSE

    _own(service, remote, staff)
    challenge = face_service(service.state).issue_challenge(RECOVERY_PURPOSE,
                                                            remote.recovery_id)
    remote.challenge_id = challenge.challenge_id
    return challenge


async def relay_share(service: RecoveryService, recovery_id: str,
                      remote: RemoteRecovery | None, guardian: HolderSession
                      ) -> tuple[int, int]:
    """A guardian at this desk gives their share to a recovery held by another org, or a
    guardian whose keys another org holds gives theirs to one held here."""
    state = service.state
    if remote is not None:
        if remote.expired:
            service._remote.pop(recovery_id, None)
            raise Gone("the recovery expired; start again", code="recovery_expired")
        custodian, handle = remote.custodian, remote.handle
    else:
        service.by_handle(recovery_id)  # 404 / 410 before anything travels
        custodian, handle = service._own(), recovery_id
    if isinstance(guardian, RemoteHolderSession):
        out = await custody_client(state).call(guardian.custodian, "/sessions/recovery-shares", {
            "handle": guardian.handle, "custodian": custodian, "recovery": handle})
        shares, threshold = int(out["shares"]), int(out["threshold"])
    else:
        shares, threshold = await give_share_from(state, guardian.passport_key().private,
                                                  guardian.pid, custodian, handle)
    if remote is not None:
        remote.shares = shares
    return shares, threshold


async def finish_remote(service: RecoveryService, remote: RemoteRecovery, staff: StaffMember,
                        challenge_id: str, frames: list[tuple[bytes, float]],
                        new_password: str) -> RecoveryResult:
    """Liveness here, with this org's engine; everything else at the custodian."""
    from .holder_recovery import RECOVERY_PURPOSE, RecoveryResult, _check_password

    state = service.state
    _own(service, remote, staff)
    _check_password(new_password)
    if challenge_id != remote.challenge_id:
        raise NotFound("no such face challenge for this flow", code="challenge_not_found")
    client = custody_client(state)
    # The custodian's checks that need no face (shares, passport, its reference against the
    # ledger) before the challenge is spent.
    await client.call(remote.custodian, "/recoveries/ready", {"handle": remote.handle})
    live = await face_service(state).check_live(
        challenge_id, RECOVERY_PURPOSE, remote.recovery_id,
        challenge_frames(state.db, challenge_id, frames))
    out = await client.call(remote.custodian, "/recoveries/finish", {
        "handle": remote.handle, "embedding": encode_embedding(live),
        "new_password": new_password})
    service._remote.pop(remote.recovery_id, None)
    result = RecoveryResult(str(out["passport_id"]), bool(out["face_reenrolled"]),
                            int(out["shares"]))
    with state.db.transaction() as conn:
        conn.execute(
            "INSERT INTO holder_recoveries (recovery_id, passport_id, org, staff, shares, "
            "face_reenrolled, finished) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (remote.recovery_id, remote.passport_id, staff.org, staff.name, result.shares,
             int(result.face_reenrolled), time.time()))
    log.info("recovery finished by the enrolling org's gateway (%d shares, face re-enrolled: "
             "%s)", result.shares, result.face_reenrolled)
    return result


# --- a guardian's custodian (G) ----------------------------------------------------------------
async def give_share_from(state: AppState, guardian_private: Any, guardian_pid: str,
                          custodian: str, handle: str) -> tuple[int, int]:
    """Open the guardian's sealed share of the recovery `handle` held by `custodian` with the
    guardian's passport key (held here, level-2 session) and give it to that recovery."""
    from .holder_recovery import recovery_service

    service = recovery_service(state)
    if custodian == state.settings.org:
        rec = service.add_opened_share(service.by_handle(handle), guardian_pid,
                                       guardian_private)
        return len(rec.mnemonics), rec.threshold
    client = custody_client(state)
    sealed = await client.call(custodian, "/recoveries/shares/sealed",
                               {"handle": handle, "guardian": guardian_pid}, "sealed")
    try:
        mnemonic = recovery.open_share(str(sealed), guardian_private)
    except RecoveryError:
        raise Conflict("this guardian's stored share does not open",
                       code="share_unusable") from None
    out = await client.call(custodian, "/recoveries/shares",
                            {"handle": handle, "guardian": guardian_pid, "mnemonic": mnemonic})
    log.info("guardian share given to another org's recovery")
    return int(out["shares"]), int(out["threshold"])


# --- the holder's custodian (E), for a guardian's custodian -------------------------------------
async def require_guardians_custodian(state: AppState, caller: str, guardian_pid: str) -> None:
    """Only the org the ledger names as the guardian's enrolling org (which holds the
    guardian's key) is handed that guardian's sealed share or may give its mnemonic."""
    from gateway.core.errors import chaincode_error
    from gateway.fabric import ChaincodeError

    from .custody import custody_service

    own = custody_service(state).own_org()
    try:
        passport = json_object(await state.ledger.carrier(own).evaluate(
            "Passport:Get", [guardian_pid]))
    except ChaincodeError as exc:
        if chaincode_error(exc).code == "not_found":
            raise NotGuardiansCustodian("no such guardian passport") from None
        raise
    if passport.get("enrolling_org") != caller:
        raise NotGuardiansCustodian(
            "only the gateway of the org that enrolled a guardian opens that guardian's share")
