"""The organisations of the MIP consortium (names fixed by docs/ledger.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrgSpec:
    """One Fabric organisation: its MSP id and the DNS domain its hosts live under."""

    msp_id: str
    domain: str


DEFAULT_PEER_ORGS: tuple[OrgSpec, ...] = (
    OrgSpec("HospitalMSP", "hospital.mip.local"),
    OrgSpec("SchoolMSP", "school.mip.local"),
    OrgSpec("PharmacyMSP", "pharmacy.mip.local"),
)

ORDERER_ORG = OrgSpec("OrdererMSP", "orderer.mip.local")
