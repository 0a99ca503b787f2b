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

Order: ledger first (the authoritative state), then the credentials. If publishing fails after
the ledger revocation, calling this again is safe: the passport is already revoked (the ledger
record says `revoked`, so it is not submitted again) and only the credentials still live are
revoked; with none left it answers 409 `already_revoked`. Open holder sessions of the passport
end as soon as the ledger says revoked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.core.errors import Conflict, Forbidden
from gateway.core.security import StaffMember, require_role

from .holders import holder_service
from .kyc import kyc_service

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.revocation")


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
    contract = state.ledger.for_staff(staff)
    record = json.loads(await contract.evaluate("Passport:Get", [passport_id]))
    org = str(record["enrolling_org"])
    own = staff.org == org
    if not own and not fraudulent:
        raise Forbidden(f"only a registrar of {org}, the enrolling org, revokes this passport; "
                        "another org may propose a fraudulent revocation", code="wrong_org")
    result: dict[str, object] = dict(record)
    # A revoked passport may still be found fraudulent (the ledger allows it), so only a
    # revocation that already says as much is not submitted again.
    settled = record.get("status") == "revoked" and (bool(record.get("fraudulent"))
                                                     or not fraudulent)
    if not settled:
        # A fraud proposal may touch every org's passports: every org endorses it; otherwise the
        # gateway plans a majority (the chaincode's policy).
        endorsing = state.ledger.orgs() if fraudulent else None
        result = json.loads(await contract.submit(
            "Passport:Revoke", [passport_id, reason, json.dumps(fraudulent)],
            endorsing_orgs=endorsing))
    elif not own or not _issued_live(state, passport_id, org):
        raise Conflict("this passport is already revoked", code="already_revoked")
    revoked_now = result.get("status") == "revoked"
    revoked = 0
    if revoked_now:
        if own:
            revoked = await kyc_service(state).revoke(org, passport_id)
        with state.db.transaction() as conn:
            conn.execute("UPDATE holders SET status = 'revoked' WHERE passport_id = ?",
                         (passport_id,))
        holder_service(state).end_sessions_of(passport_id)
        log.info("passport revoked (fraudulent: %s); %d KYC credential(s) revoked",
                 result.get("fraudulent"), revoked)
    else:
        log.info("fraudulent revocation proposed by %s; awaiting a majority", staff.org)

    def ids(key: str) -> list[str]:
        value = result.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    proposals = result.get("fraud_proposals")
    return RevocationResult(
        passport_id, str(result.get("status", "revoked")), revoked, ids("flagged_vouches"),
        ids("demoted"), fraud_pending=bool(result.get("fraud_pending")),
        fraud_proposals=[{"org": str(p.get("org")), "reason": str(p.get("reason"))}
                         for p in proposals if isinstance(p, dict)]
        if isinstance(proposals, list) else [],
        kyc_revocation_pending=revoked_now and not own and _issued_live(state, passport_id, org))


def _issued_live(state: AppState, passport_id: str, org: str) -> bool:
    """Whether `org` issued this passport a KYC credential it has not yet revoked."""
    kyc_service(state)  # its table exists from here on
    return state.db.query_one(
        "SELECT 1 FROM kyc_credentials WHERE passport_id = ? AND org = ? AND revoked = 0 "
        "AND rev_index IS NOT NULL", (passport_id, org)) is not None
