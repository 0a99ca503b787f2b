"""The API's lists of scopes, credential types and roles are the contract's (a scope the API
refused, or one it accepted that the contract does not know, would be a silent drift)."""

from __future__ import annotations

from typing import get_args

from chaincode.mip.staff import ROLES
from chaincode.protocol.scopes import CREDENTIAL_TYPES, SCOPES
from gateway.api.models.grants import CredentialType, Role, Scope
from gateway.services.credentials import ISSUERS


def test_api_lists_are_the_contracts() -> None:
    assert set(get_args(Scope)) == set(SCOPES)
    assert set(get_args(CredentialType)) == set(CREDENTIAL_TYPES)
    assert set(get_args(Role)) == set(ROLES)
    assert ISSUERS == {"prescription": ("HospitalMSP", "doctor"),
                       "record": ("HospitalMSP", "doctor"),
                       "diploma": ("SchoolMSP", "school_registrar"),
                       "transcript": ("SchoolMSP", "school_registrar")}
