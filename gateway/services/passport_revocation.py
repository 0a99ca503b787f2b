"""A registrar revokes a passport through the gateway, and with it the passport's KYC
credentials.

Who: the passport belongs to its enrolling org. An ordinary revocation is for that org's
registrars only (another org's gets 403 `wrong_org` here and `access_denied` on the ledger). A
fraudulent one (`fraudulent: true`) is a proposal any org's registrar may make: the ledger
keeps its reason and revokes once registrars of a majority of orgs proposed it; until then the
answer says `fraud_pending` and nothing else happens.

`Passport:Revoke` (signed as the registrar, endorsed by the enrolling org, or by every member
org when fraudulent: a fraudulent revocation flags the vouches the passport gave and may demote
other passports) ends the passport on the ledger. Its accounts are unlinkable to it there, so
the ledger alone cannot stop the holder from proving KYC for new accounts: the enrolling org,
as the KYC issuer, also revokes every live KYC credential it issued for the passport and
publishes the new status list (`KycService.revoke`, as that org's admin identity), so a
presentation of that credential no longer verifies. Only a registrar of the enrolling org
triggers that publication: the gateway never publishes an org's revocation list because
another org's staff asked. When another org's proposal completed the majority, the answer says
`kyc_revocation_pending` and the enrolling org's registrar finishes it by calling again.

Order and crash consistency: ledger first (the authoritative state), then the credentials,
then the holder row and sessions. Each request is recorded before `Passport:Revoke` is
submitted, with each endorsed transaction before it is sent, and its answer once every step is
done (revocation_intents.py). A request is (passport, registrar, fraudulent, reason): a retry
of the same one, after a crash (kill -9) or a lost answer at any step, reconciles with the
ledger instead of starting again:

- the ledger does not show it (never submitted, endorsed but never ordered, refused): it is
  submitted (again); `Passport:Revoke` changes a passport once, so two transactions of one
  request never revoke twice;
- the ledger shows it (revoked; for a fraud proposal, this org's proposal recorded): the steps
  after the ledger are completed, each idempotent: the passport's live KYC credentials are
  revoked (the issuer's status list and the rows marked revoked commit together, kyc.py) and
  every status list of its credentials that is newer here than on the ledger is published
  (`KycService.publish_revocations`: a publication a crash cut off is made again), the
  holder row is marked `revoked` and open sessions end; the answer is 200 with the same
  shape as the first call's (`kyc_credentials_revoked` counts the passport's credentials
  of the enrolling org that are revoked; `flagged_vouches`/`demoted` come from the recorded
  transaction that committed, empty when another request's did);
- finished already (the answer was lost): the recorded answer, unchanged, while the ledger's
  status is still the one it gave and no credential is left to revoke.

409 stays for a genuinely different request: `already_revoked` when the ledger shows the
passport revoked by another request (another registrar, or another reason: the ledger keeps
the first reason, so the caller must not believe theirs was recorded) and nothing is left for
this gateway to do; `conflict` when this org's fraud proposal is already on the ledger from
another request. The enrolling org's registrar calling after another org's proposal completed
the majority (`kyc_revocation_pending`) is answered 200: the KYC revocation is that call's work.

An interrupted request whose registrar never retries is finished when the gateway starts
(`settle_interrupted`, from the app's lifespan) and by the next revocation request of any
passport at this gateway (`RevocationService.sweep`), whichever comes first: the ledger
shows it ->
the local steps are completed and the answer recorded; it does not, after
`revocation_intents.DROP_AFTER_S` -> the row is dropped (nothing local was done before the
ledger). Holder sessions live in memory only, so a restart ends them; the persisted holder row
is what the sweep and the retry settle.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.core.errors import Conflict, Forbidden
from gateway.core.security import StaffMember, require_role
from gateway.fabric import ChaincodeError, CommitError, Contract

from .dispense_recovery import committed_result
from .holders import holder_service
from .keyed_locks import KeyedLocks
from .kyc import kyc_service
from .revocation_intents import DROP_AFTER_S, Intent, Request, RevocationIntents

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.revocation")

# Failures after which the ledger certainly did not commit the transaction just sent; any
# other (a timeout, a lost connection, a crash) leaves the outcome unknown and the intent.
REFUSED = (ChaincodeError, CommitError)


@dataclass(frozen=True)
class RevocationResult:
    passport_id: str
    status: str
    kyc_credentials_revoked: int
    flagged_vouches: list[str] = field(default_factory=list)
    demoted: list[str] = field(default_factory=list)
    fraud_pending: bool = False
    fraud_proposals: list[dict[str, str]] = field(default_factory=list)
    kyc_revocation_pending: bool = False


async def revoke_passport(state: AppState, staff: StaffMember, passport_id: str, reason: str,
                          fraudulent: bool) -> RevocationResult:
    require_role(staff, ("registrar",))
    service = revocation_service(state)
    await service.sweep()
    async with service.locks.hold(passport_id):
        return await service.revoke(staff, Request(passport_id, staff.org, staff.name,
                                                   fraudulent, reason))


async def settle_interrupted(state: AppState) -> None:
    """At start-up (gateway/main.py's lifespan): sweep the requests a crash left unfinished.
    Never fatal: what cannot be settled now is settled by the next revocation request."""
    try:
        await revocation_service(state).sweep()
    except Exception:
        # A background task: whatever failed, the gateway serves on, and the next request
        # sweeps again.
        log.warning("interrupted revocations could not be settled at start-up")


class RevocationService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.intents = RevocationIntents(state.db)
        # One request per passport at a time in this process (one process per database).
        self.locks = KeyedLocks()

    async def revoke(self, staff: StaffMember, request: Request) -> RevocationResult:
        passport_id, fraudulent = request.passport_id, request.fraudulent
        contract = self.state.ledger.for_staff(staff)
        record = await _passport(contract, passport_id)
        org = str(record["enrolling_org"])
        own = staff.org == org
        if not own and not fraudulent:
            raise Forbidden(f"only a registrar of {org}, the enrolling org, revokes this "
                            "passport; another org may propose a fraudulent revocation",
                            code="wrong_org")
        intent = self.intents.find(request)
        work_left = own and record.get("status") == "revoked" and _issued_live(
            self.state, passport_id, org)
        if (intent is not None and intent.outcome is not None and not work_left
                and intent.outcome.get("status") == record.get("status")):
            log.info("a finished revocation request answered again (a retry)")
            return RevocationResult(**intent.outcome)
        if _shows(record, staff.org, fraudulent):
            if intent is None and not work_left:
                if fraudulent and record.get("status") != "revoked":
                    raise Conflict(f"{staff.org} has already proposed this fraudulent "
                                   "revocation", code="conflict")
                raise Conflict("this passport is already revoked", code="already_revoked")
            if intent is None:
                # The KYC revocation left to this org (another org's proposal revoked it):
                # this request's own work, recorded so that its retry is answered the same.
                intent = self.intents.begin(request)
            result = await _ledger_result(contract, intent, record, fraudulent)
        else:
            intent = self.intents.begin(request)
            result = await self._submit(contract, intent, request)
        return await self._finish(passport_id, intent, result, org, own)

    async def _submit(self, contract: Contract, intent: Intent,
                      request: Request) -> dict[str, Any]:
        # A fraud proposal may touch every org's passports: every org endorses it; otherwise
        # the gateway plans a majority (the chaincode's policy).
        endorsing = self.state.ledger.orgs() if request.fraudulent else None
        try:
            raw = await contract.submit(
                "Passport:Revoke", [request.passport_id, request.reason,
                                    json.dumps(request.fraudulent)],
                endorsing_orgs=endorsing,
                before_submit=lambda tx: self.intents.record_tx(intent.intent_id, tx))
        except REFUSED:
            # Refused now; an earlier transaction of this request (its answer lost, ordered
            # late) may have committed all the same.
            record = await _passport(contract, request.passport_id)
            if not _shows(record, request.org, request.fraudulent):
                self.intents.drop(intent.intent_id)
                raise
            return await _ledger_result(contract, self._reread(intent), record,
                                        request.fraudulent)
        result: dict[str, Any] = json.loads(raw)
        return result

    def _reread(self, intent: Intent) -> Intent:
        return Intent(intent.intent_id, intent.request, intent.passport_id, intent.org,
                      intent.fraudulent, self.intents.txs(intent.intent_id), intent.outcome,
                      intent.created)

    async def _finish(self, passport_id: str, intent: Intent | None, result: dict[str, Any],
                      org: str, own: bool) -> RevocationResult:
        """The steps after the ledger, each idempotent; the answer recorded last."""
        revoked_now = result.get("status") == "revoked"
        revoked = 0
        if revoked_now:
            if own:
                kyc = kyc_service(self.state)
                if await kyc.revoke(org, passport_id) == 0:
                    # Nothing live: a retry, whose publication a crash may have cut off.
                    await kyc.publish_revocations(org, passport_id)
                revoked = _revoked_count(self.state, passport_id, org)
            holder_service(self.state).end_sessions_of(passport_id)
            with self.state.db.transaction() as conn:
                conn.execute("UPDATE holders SET status = 'revoked' WHERE passport_id = ?",
                             (passport_id,))
            log.info("passport revoked (fraudulent: %s); %d KYC credential(s) revoked",
                     result.get("fraudulent"), revoked)
        else:
            log.info("fraudulent revocation proposed; awaiting a majority")

        def ids(key: str) -> list[str]:
            value = result.get(key)
            return [str(v) for v in value] if isinstance(value, list) else []

        proposals = result.get("fraud_proposals")
        outcome = RevocationResult(
            passport_id, str(result.get("status", "revoked")), revoked, ids("flagged_vouches"),
            ids("demoted"), fraud_pending=bool(result.get("fraud_pending")),
            fraud_proposals=[{"org": str(p.get("org")), "reason": str(p.get("reason"))}
                             for p in proposals if isinstance(p, dict)]
            if isinstance(proposals, list) else [],
            kyc_revocation_pending=revoked_now and not own and _issued_live(
                self.state, passport_id, org))
        if intent is not None:
            self.intents.finish(intent.intent_id, asdict(outcome))
        return outcome

    async def sweep(self) -> None:
        """Finish (or drop) the requests a crash left unfinished (module doc), other than
        those in flight now."""
        for intent in self.intents.unfinished():
            if self.locks.busy(intent.passport_id):
                continue
            async with self.locks.hold(intent.passport_id):
                try:
                    await self._settle(intent)
                except Exception as exc:
                    # The ledger or a peer did not answer, or another passport's step failed:
                    # the row stays for a later try, and the calling request goes on.
                    log.info("an interrupted revocation could not be settled yet (%s)",
                             type(exc).__name__)

    async def _settle(self, intent: Intent) -> None:
        contract = self.state.ledger.carrier(intent.org)
        record = await _passport(contract, intent.passport_id)
        if _shows(record, intent.org, intent.fraudulent):
            result = await _ledger_result(contract, intent, record, intent.fraudulent)
            await self._finish(intent.passport_id, intent, result,
                               str(record["enrolling_org"]),
                               intent.org == record["enrolling_org"])
            log.info("an interrupted revocation was finished")
        elif time.time() - intent.created > DROP_AFTER_S:
            self.intents.drop(intent.intent_id)
            log.info("an interrupted revocation the ledger never took was dropped")


async def _passport(contract: Contract, passport_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(await contract.evaluate("Passport:Get", [passport_id]))
    return record


def _shows(record: dict[str, Any], org: str, fraudulent: bool) -> bool:
    """Whether the ledger's record already has what a request of `org` asks: revoked; for a
    fraud proposal, revoked as fraudulent or this org's proposal recorded. (A revoked passport
    may still be found fraudulent: the ledger allows it.)"""
    revoked = record.get("status") == "revoked"
    if not fraudulent:
        return revoked
    proposals = record.get("fraud_proposals")
    proposed = isinstance(proposals, list) and any(
        isinstance(p, dict) and p.get("org") == org for p in proposals)
    return (revoked and bool(record.get("fraudulent"))) or proposed


async def _ledger_result(contract: Contract, intent: Intent | None, record: dict[str, Any],
                         fraudulent: bool) -> dict[str, Any]:
    """What `Passport:Revoke` answered for this request, as the ledger now stands: the
    recorded transaction's result if one committed and its status is still the record's,
    else the record itself (no vouches flagged or demoted by this request)."""
    if intent is not None:
        committed = await committed_result(contract, intent.txs)
        if committed is not None and committed.get("status") == record.get("status"):
            return committed
    return {**record, "fraud_pending": fraudulent and record.get("status") != "revoked",
            "flagged_vouches": [], "demoted": []}


def _issued_live(state: AppState, passport_id: str, org: str) -> bool:
    """Whether `org` issued this passport a KYC credential it has not yet revoked."""
    kyc_service(state)  # its table exists from here on
    return state.db.query_one(
        "SELECT 1 FROM kyc_credentials WHERE passport_id = ? AND org = ? AND revoked = 0 "
        "AND rev_index IS NOT NULL", (passport_id, org)) is not None


def _revoked_count(state: AppState, passport_id: str, org: str) -> int:
    row = state.db.query_one(
        "SELECT COUNT(*) AS n FROM kyc_credentials WHERE passport_id = ? AND org = ? AND "
        "revoked = 1 AND rev_index IS NOT NULL", (passport_id, org))
    return int(row["n"]) if row is not None else 0


def revocation_service(state: AppState) -> RevocationService:
    return state.service("passport_revocation", RevocationService)
