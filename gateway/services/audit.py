"""Who touched a holder's data: the holder's own view and an auditor's view of their org."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.core.security import StaffMember, require_role

from .holder_requests import carrier_for, check_signed, request_arg
from .ledger_reads import json_list

if TYPE_CHECKING:
    from .state import AppState


async def holder_log(state: AppState, signed: dict[str, Any], account: str
                     ) -> list[dict[str, Any]]:
    """`Access:HolderLog` with the holder's signed `access.log` request."""
    check_signed(signed, "access.log", account=account)
    carrier = await carrier_for(state, account)
    return json_list(await carrier.evaluate("Access:HolderLog", [request_arg(signed)]))


async def org_log(state: AppState, member: StaffMember, start: int, end: int
                  ) -> list[dict[str, Any]]:
    """`Access:AuditorLog`: the auditor's own org's access records in [start, end)."""
    require_role(member, ("auditor",))
    return json_list(await state.ledger.for_staff(member).evaluate(
        "Access:AuditorLog", [str(start), str(end)]))
