"""`Passport:Vouch` from a level-2 holder session, safe to retry after a crash.

A vouch changes only the ledger: the gateway writes nothing before or after it (the vouchee's
level-3 credential is issued at its next unlock from the ledger's level, holders.py), so a
crash at any point leaves the ledger's outcome and no local row to strand. What a crash can
leave is a holder who does not know the outcome; their retry signs a new request, and the
contract refuses a second vouch of the same pair (`conflict`: one vouch record per voucher and
vouchee). That refusal is the ledger saying the vouch is committed, so the retry answers as
the first call would have (201 with the vouchee's level read back), never 409 for a vouch the
holder cannot see. The contract counts the pair once either way.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from gateway.core.errors import chaincode_error
from gateway.fabric import ChaincodeError

from .ledger_reads import json_object

if TYPE_CHECKING:
    from .holders import HolderSession
    from .state import AppState

log = logging.getLogger("mip.gateway.vouching")


async def vouch(state: AppState, holder: HolderSession, passport_id: str) -> dict[str, Any]:
    """The session's holder vouches for `passport_id`; returns `{"kyc_level", "vouches"}`
    (`vouches` is None when the answer comes from a vouch committed earlier)."""
    holder.require_level(2)
    reader = state.ledger.reader_org()
    vouchee = json_object(await state.ledger.carrier(reader).evaluate(
        "Passport:Get", [passport_id]))
    org = state.settings.org or str(vouchee["enrolling_org"])
    request = await holder.passport_signed("passport.vouch", {"vouchee": passport_id})
    try:
        result = dict(json_object(await state.ledger.carrier(org).submit(
            "Passport:Vouch", [json.dumps(request)])))
    except ChaincodeError as exc:
        # The only conflict Vouch raises is an existing vouch of this pair (checked after
        # the signature, so it is this holder's): committed earlier, e.g. by a call cut off.
        if chaincode_error(exc).code != "conflict":
            raise
        vouchee = json_object(await state.ledger.carrier(reader).evaluate(
            "Passport:Get", [passport_id]))
        log.info("vouch already on the ledger (a retry)")
        return {"kyc_level": int(vouchee["kyc_level"]), "vouches": None}
    log.info("vouch recorded (vouchee level %s)", result.get("kyc_level"))
    return {"kyc_level": int(result["kyc_level"]), "vouches": result.get("vouches")}
