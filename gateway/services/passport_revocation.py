"""A registrar revokes a passport through the gateway, and with it the passport's KYC
credentials.

`Passport:Revoke` (signed as the registrar, endorsed by the enrolling org, or by every member
org when fraudulent: a fraudulent revocation flags the vouches the passport gave and may demote
other passports) ends the passport on the ledger. Its accounts are unlinkable to it there, so
the ledger alone cannot stop the holder from proving KYC for new accounts: the gateway, as the
KYC issuer, also revokes every live KYC credential it issued for the passport (each issuing
org's revocation registry) and publishes the new status lists (`KycService.revoke`), so a
presentation of that credential no longer verifies.

Order: ledger first (the authoritative state), then the credentials. If publishing fails after
the ledger revocation, calling this again is safe: the passport is already revoked (the ledger
record says `revoked`, so it is not submitted again) and only the credentials still live are
revoked; with none left it answers 409 `already_revoked`. Open holder sessions of the passport
end at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.core.errors import Conflict
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


async def revoke_passport(state: AppState, staff: StaffMember, passport_id: str, reason: str,
                          fraudulent: bool) -> RevocationResult:
    require_role(staff, ("registrar",))
    contract = state.ledger.for_staff(staff)
    record = json.loads(await contract.evaluate("Passport:Get", [passport_id]))
    result: dict[str, object] = dict(record)
    if record.get("status") != "revoked":
        # Every org whose passports a fraudulent revocation may touch endorses; otherwise the
        # gateway plans a majority (the chaincode's policy).
        endorsing = state.ledger.orgs() if fraudulent else None
        result = json.loads(await contract.submit(
            "Passport:Revoke", [passport_id, reason, json.dumps(fraudulent)],
            endorsing_orgs=endorsing))
    elif not _issued_live(state, passport_id):
        raise Conflict("this passport is already revoked", code="already_revoked")
    kyc = kyc_service(state)
    revoked = 0
    for issuing_org in _issuing_orgs(state, passport_id):
        revoked += await kyc.revoke(issuing_org, passport_id)
    with state.db.transaction() as conn:
        conn.execute("UPDATE holders SET status = 'revoked' WHERE passport_id = ?",
                     (passport_id,))
    holder_service(state).end_sessions_of(passport_id)
    log.info("passport revoked (fraudulent: %s); %d KYC credential(s) revoked", fraudulent,
             revoked)

    def ids(key: str) -> list[str]:
        value = result.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    return RevocationResult(passport_id, str(result.get("status", "revoked")), revoked,
                            ids("flagged_vouches"), ids("demoted"))


def _issuing_orgs(state: AppState, passport_id: str) -> list[str]:
    rows = state.db.query(
        "SELECT DISTINCT org FROM kyc_credentials WHERE passport_id = ? AND revoked = 0 "
        "AND rev_index IS NOT NULL", (passport_id,))
    return sorted(str(r["org"]) for r in rows)


def _issued_live(state: AppState, passport_id: str) -> bool:
    return bool(_issuing_orgs(state, passport_id))
