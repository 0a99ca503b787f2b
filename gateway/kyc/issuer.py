"""An org's KYC issuer: the CL key pair and revocation registries behind its credentials.

Private parts (the credential definition's private key, each registry's private part) stay in
here and never go to the ledger; `public_documents()` and `revocation_documents()` are what
the org publishes (`Account:RegisterKycIssuer`, `Account:PublishKycRevocation`).

A revocation registry holds a fixed number of credentials (anoncreds CL_ACCUM: its tails file
is sized up front). When the current one is full, `issue` opens the next registry of the
same credential definition (tags r1, r2, ...) and issues from it; earlier registries stay,
so their credentials can still be presented and revoked. A new registry is `unpublished()`
until its owner publishes it (`mark_published`).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
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


@dataclass
class Registry:
    """One revocation registry of an issuer, with its private part and latest status list."""

    rev_reg_id: str
    tag: str
    definition: Any  # RevocationRegistryDefinition
    private: Any  # RevocationRegistryDefinitionPrivate: never leaves the issuer
    status_list: Any  # RevocationStatusList
    next_index: int = 1  # anoncreds registry indexes start at 1
    published: bool = False

    @property
    def capacity(self) -> int:
        """How many credentials it holds: indexes 1 .. maxCredNum - 1. (anoncreds 0.2.3's
        accumulator counts from 1 but its status list from 0, so maxCredNum itself is refused:
        "Revocation status list does not have the index".)"""
        return int(self.definition.to_dict()["value"]["maxCredNum"]) - 1

    @property
    def full(self) -> bool:
        return self.next_index > self.capacity

    @property
    def tails_path(self) -> str:
        """Where holders get the tails file (a local path here; a URL in a deployment)."""
        return str(self.definition.to_dict()["value"]["tailsLocation"])


class KycIssuer:
    """An org's KYC issuer. Private parts (credential definition, registries) stay in here."""

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
        self.registry_size = max_credentials  # of each registry opened from now on
        self.registries: dict[str, Registry] = {}  # in the order they were opened
        if revocable:
            self.open_registry(tails_dir or tempfile.mkdtemp(prefix="mip-tails-"))

    # --- registries ----------------------------------------------------------------------
    def open_registry(self, tails_dir: str | None = None) -> Registry:
        """Open the next registry (r1, r2, ...) of `registry_size` credentials; its tails
        file goes next to the current one's unless `tails_dir` is given."""
        if not self.revocable:
            raise ValueError("this credential definition does not support revocation")
        if tails_dir is None:
            tails_dir = os.path.dirname(self.current.tails_path)
        tag = f"r{len(self.registries) + 1}"
        identifier = rev_reg_id(self.org, self.tag, tag)
        definition, private = RevocationRegistryDefinition.create(
            self.cred_def_id, self.cred_def, issuer_id(self.org), tag, "CL_ACCUM",
            self.registry_size + 1, tails_dir_path=tails_dir,  # + 1: see Registry.capacity
        )
        status_list = RevocationStatusList.create(
            self.cred_def, identifier, definition, private, issuer_id(self.org), True,
            int(time.time()),
        )
        registry = Registry(identifier, tag, definition, private, status_list)
        self.registries[identifier] = registry
        return registry

    @property
    def current(self) -> Registry:
        """The registry new credentials are issued from (the last opened)."""
        if not self.registries:
            raise ValueError("this credential definition does not support revocation")
        return next(reversed(self.registries.values()))

    def registry(self, identifier: str | None = None) -> Registry:
        """Registry `identifier` (the current one by default)."""
        if identifier is None:
            return self.current
        try:
            return self.registries[identifier]
        except KeyError:
            raise ValueError(f"{identifier} is not a registry of {self.cred_def_id}") from None

    def unpublished(self) -> list[Registry]:
        return [r for r in self.registries.values() if not r.published]

    def mark_published(self, identifier: str) -> None:
        self.registry(identifier).published = True

    # The current registry's parts, as before registries rolled over.
    @property
    def rev_reg_id(self) -> str | None:
        return self.current.rev_reg_id if self.revocable else None

    @property
    def rev_reg_def(self) -> Any:
        return self.current.definition

    @property
    def status_list(self) -> Any:
        return self.current.status_list

    @property
    def tails_path(self) -> str:
        return self.current.tails_path

    # --- documents -----------------------------------------------------------------------
    def public_documents(self) -> tuple[str, str]:
        """(schema JSON, credential definition JSON): what `Account:RegisterKycIssuer` takes."""
        return self.schema.to_json(), self.cred_def.to_json()

    def revocation_documents(self, identifier: str | None = None) -> tuple[str, str]:
        """(registry definition JSON, latest status list JSON) of registry `identifier` (the
        current one by default): what `Account:PublishKycRevocation` takes."""
        registry = self.registry(identifier)
        return registry.definition.to_json(), registry.status_list.to_json()

    # --- issuing and revoking ------------------------------------------------------------
    def offer(self) -> Any:
        return CredentialOffer.create(self.schema_id, self.cred_def_id, self._key_proof)

    def issue(self, offer: Any, request: Any, kyc_level: int,
              passport_epoch: int) -> tuple[Any, int | None]:
        """A credential and its index in its registry (`credential.rev_reg_id`), which the
        issuer keeps against the passport. A full registry rolls over to a new one."""
        values = {"kyc_level": str(kyc_level), "passport_epoch": str(passport_epoch)}
        if not self.revocable:
            credential = Credential.create(self.cred_def, self._cred_def_private, offer,
                                           request, values)
            return credential, None
        registry = self.current
        if registry.full:
            registry = self.open_registry()
        index = registry.next_index
        config = CredentialRevocationConfig(registry.definition, registry.private,
                                            registry.status_list, index)
        credential = Credential.create(self.cred_def, self._cred_def_private, offer, request,
                                       values, None, config)
        registry.next_index += 1
        return credential, index

    def revoke(self, index: int, identifier: str | None = None) -> None:
        """Revoke credential `index` of registry `identifier` (the current one by default);
        publish its `revocation_documents(identifier)` afterwards."""
        registry = self.registry(identifier)
        previous = int(registry.status_list.to_dict()["timestamp"])
        registry.status_list = registry.status_list.update(
            self.cred_def, registry.definition, registry.private, None, [index],
            max(int(time.time()), previous + 1),
        )
