"""Staff authorisation: role from the `mip.role` certificate attribute, org from the MSP id."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from chaincode.mip.errors import AccessDenied
from chaincode.protocol.orgs import HOSPITAL, MEMBER_ORGS, PHARMACY, SCHOOL
from chaincode.shim import Context

__all__ = ["HOSPITAL", "MEMBER_ORGS", "PHARMACY", "SCHOOL"]  # re-exported for the contract

ROLE_ATTRIBUTE = "mip.role"

ROLES = frozenset(
    {"registrar", "doctor", "pharmacist", "school_registrar", "researcher", "auditor", "admin",
     "gateway"}
)


@dataclass(frozen=True)
class Staff:
    msp_id: str
    role: str | None
    client_id: str  # Fabric's x509::<subject>::<issuer> string: names the person in the audit


def caller(ctx: Context) -> Staff:
    identity = ctx.client_identity
    return Staff(
        msp_id=identity.get_msp_id(),
        role=identity.get_attribute_value(ROLE_ATTRIBUTE),
        client_id=identity.get_id_string(),
    )


def require_staff(
    ctx: Context, roles: Collection[str], orgs: Collection[str] = MEMBER_ORGS
) -> Staff:
    """The caller must hold one of `roles` in one of `orgs`, else AccessDenied."""
    staff = caller(ctx)
    if staff.msp_id not in orgs:
        raise AccessDenied(f"organisation {staff.msp_id} may not do this")
    if staff.role not in roles:
        raise AccessDenied(f"role {staff.role or '(none)'} may not do this; needs {sorted(roles)}")
    return staff
