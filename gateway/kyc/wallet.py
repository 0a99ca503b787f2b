"""The holder's KYC wallet: a link secret and the credentials bound to it.

A presentation proves `kyc_level >= min_level` for one account and reveals nothing else; its
nonce is derived from the account (chaincode/protocol/kyc.py), so it opens no other account.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from anoncreds import (  # type: ignore[import-untyped]
    CredentialRequest,
    CredentialRevocationState,
    Presentation,
    PresentCredentials,
    RevocationStatusList,
    create_link_secret,
)

from chaincode.protocol.kyc import (
    PREDICATE_REFERENT,
    account_nonce,
    presentation_request,
    reprove_nonce,
)
from gateway.kyc.issuer import KycIssuer


class KycHolder:
    """The holder's wallet: a link secret and the KYC credentials bound to it."""

    def __init__(self) -> None:
        self._link_secret = create_link_secret()
        self._credentials: dict[str, tuple[Any, KycIssuer, int | None]] = {}

    def obtain(self, issuer: KycIssuer, kyc_level: int, passport_epoch: int = 1) -> int | None:
        """Run the issuance protocol with `issuer`; returns the registry index, if any."""
        offer = issuer.offer()
        request, metadata = CredentialRequest.create(
            secrets.token_hex(16), None, issuer.cred_def, self._link_secret, "mip", offer
        )
        credential, index = issuer.issue(offer, request, kyc_level, passport_epoch)
        registry = issuer.registry(credential.rev_reg_id) if issuer.revocable else None
        credential = credential.process(metadata, self._link_secret, issuer.cred_def,
                                        registry.definition if registry else None)
        self._credentials[issuer.cred_def_id] = (credential, issuer, index)
        return index

    def rev_reg_id(self, cred_def_id: str) -> str | None:
        """The revocation registry the credential of `cred_def_id` was issued from."""
        credential, _issuer, _index = self._credentials[cred_def_id]
        identifier = credential.rev_reg_id
        return None if identifier is None else str(identifier)

    def present(self, account_public_key: bytes, pseudonym: str, min_level: int, *,
                status_list: Mapping[str, Any] | None = None,
                reprove: bool = False) -> dict[str, Any]:
        """A presentation of kyc_level >= min_level bound to this account (key, pseudonym).

        For a revocable credential it proves non-revocation at `status_list` (the latest one
        on the ledger; by default the issuer's current list of the credential's registry).
        """
        if not self._credentials:
            raise ValueError("the holder has no KYC credential")
        credential, issuer, index = next(iter(self._credentials.values()))
        present = PresentCredentials()
        revocation_time: int | None = None
        if issuer.revocable and index is not None:
            # The registry it was issued from: an issuer rolls over to new ones as they fill.
            registry = issuer.registry(credential.rev_reg_id)
            status = (RevocationStatusList.load(dict(status_list)) if status_list is not None
                      else registry.status_list)
            revocation_time = int(status.to_dict()["timestamp"])
            state = CredentialRevocationState.create(registry.definition, status, index,
                                                     registry.tails_path)
            present.add_predicates(credential, PREDICATE_REFERENT, timestamp=revocation_time,
                                   rev_state=state)
        else:
            present.add_predicates(credential, PREDICATE_REFERENT)
        if reprove:
            if revocation_time is None:
                raise ValueError("only revocable credentials are re-proved")
            nonce = reprove_nonce(account_public_key, pseudonym, revocation_time)
        else:
            nonce = account_nonce(account_public_key, pseudonym)
        request = presentation_request(nonce, min_level, revocation_time)
        presentation = Presentation.create(
            request, present, None, self._link_secret,
            {issuer.schema_id: issuer.schema}, {issuer.cred_def_id: issuer.cred_def},
        )
        value: dict[str, Any] = presentation.to_dict()
        return value
