"""The consortium's member organisations, by MSP id (the contract's staff checks, its
endorsement policy and collections, the gateway's issuers and the networks all name them)."""

from __future__ import annotations

HOSPITAL = "HospitalMSP"
SCHOOL = "SchoolMSP"
PHARMACY = "PharmacyMSP"
MEMBER_ORGS = frozenset({HOSPITAL, SCHOOL, PHARMACY})
