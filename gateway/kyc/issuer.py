"""An org's KYC issuer: the CL key pair and revocation registry behind its credentials.

Private parts (the credential definition's private key, the registry's private part) stay in
here and never go to the ledger; `public_documents()` and `revocation_documents()` are what
the org publishes (`Account:RegisterKycIssuer`, `Account:PublishKycRevocation`).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from anoncreds import (  # type: ignore[import-untyped]
    Credential,
    CredentialDefinition,
    CredentialOffer,
    CredentialRevocationConfig,
    RevocationRegistryDefinition,
    RevocationStatusList,
    Schema,
)

from chaincode.protocol.kyc import (
    ATTRIBUTES,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    cred_def_id,
    issuer_id,
    rev_reg_id,
    schema_id,
)


class KycIssuer:
    """An org's KYC issuer. Private parts (credential definition, registry) stay in here."""

    def __init__(self, org: str, tag: str = "kyc1", *, revocable: bool = True,
                 max_credentials: int = 256, tails_dir: str | None = None) -> None:
        self.org = org
        self.tag = tag
        self.schema = Schema.create(SCHEMA_NAME, SCHEMA_VERSION, issuer_id(org), list(ATTRIBUTES))
        # Generating the CL key pair takes seconds (safe primes).
        self.cred_def, self._cred_def_private, self._key_proof = CredentialDefinition.create(
            schema_id(org), self.schema, issuer_id(org), tag, "CL", support_revocation=revocable
        )
        self.schema_id = schema_id(org)
        self.cred_def_id = cred_def_id(org, tag)
        self.revocable = revocable
        self._next_index = 1  # anoncreds registry indexes start at 1
        self.rev_reg_id: str | None = None
        if revocable:
            self.rev_reg_id = rev_reg_id(org, tag, "r1")
            self.rev_reg_def, self._rev_reg_private = RevocationRegistryDefinition.create(
                self.cred_def_id, self.cred_def, issuer_id(org), "r1", "CL_ACCUM",
                max_credentials, tails_dir_path=tails_dir or tempfile.mkdtemp(prefix="mip-tails-"),
            )
            self.status_list = RevocationStatusList.create(
                self.cred_def, self.rev_reg_id, self.rev_reg_def, self._rev_reg_private,
                issuer_id(org), True, int(time.time()),
            )

    @property
    def tails_path(self) -> str:
        """Where holders get the tails file (a local path here; a URL in a deployment)."""
        return str(self.rev_reg_def.to_dict()["value"]["tailsLocation"])

    def public_documents(self) -> tuple[str, str]:
        """(schema JSON, credential definition JSON): what `Account:RegisterKycIssuer` takes."""
        return self.schema.to_json(), self.cred_def.to_json()

    def revocation_documents(self) -> tuple[str, str]:
        """(registry definition JSON, latest status list JSON): `Account:PublishKycRevocation`."""
        return self.rev_reg_def.to_json(), self.status_list.to_json()

    def offer(self) -> Any:
        return CredentialOffer.create(self.schema_id, self.cred_def_id, self._key_proof)

    def issue(self, offer: Any, request: Any, kyc_level: int,
              passport_epoch: int) -> tuple[Any, int | None]:
        """A credential and its registry index (kept by the issuer against the passport)."""
        values = {"kyc_level": str(kyc_level), "passport_epoch": str(passport_epoch)}
        if not self.revocable:
            credential = Credential.create(self.cred_def, self._cred_def_private, offer,
                                           request, values)
            return credential, None
        index = self._next_index
        self._next_index += 1
        config = CredentialRevocationConfig(self.rev_reg_def, self._rev_reg_private,
                                            self.status_list, index)
        credential = Credential.create(self.cred_def, self._cred_def_private, offer, request,
                                       values, None, config)
        return credential, index

    def revoke(self, index: int) -> None:
        """Revoke credential `index`; publish `revocation_documents()` afterwards."""
        previous = int(self.status_list.to_dict()["timestamp"])
        self.status_list = self.status_list.update(
            self.cred_def, self.rev_reg_def, self._rev_reg_private, None, [index],
            max(int(time.time()), previous + 1),
        )
