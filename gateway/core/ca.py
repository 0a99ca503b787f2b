"""Where the gateway gets Fabric identities: the one module of `gateway` that reaches into
`network/` (tests/test_import_direction.py allows this edge and no other).

The gateway mints identities (its own service identity per org, staff added with `mip identity
add`) and revokes them (`mip identity revoke`). It does that through `CertificateAuthority`;
the implementation MIP ships, `LocalCA`, signs with the org CAs' keys where they sit beside
connection.json, the layout devnet and scripts/network.sh's local network both write
(network/devnet/pki.py). A production deployment enrols with its Fabric CA instead
(docs/deploy.md) and needs none of this. Errors come out as this module's `CAError` family,
so callers never name devnet's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class CAError(ValueError):
    """The CA refused: bad input, an unknown org or identity, or unusable CA material."""


class IdentityExists(CAError):
    """An identity of this name already exists in the org."""


@dataclass(frozen=True)
class Revocation:
    """Which certificate was revoked, the CRL now listing it, and whether this call added it."""

    msp_id: str
    serial_number: int
    crl: Path
    newly_revoked: bool


class CertificateAuthority(Protocol):
    def add_identity(self, msp_id: str, name: str, attrs: dict[str, str]) -> None:
        """Enrol `name` in the org with these certificate attributes (hf.Attrs)."""

    def identity_attrs(self, msp_id: str, name: str) -> dict[str, str]:
        """The attributes in an existing identity's certificate."""

    def revoke_identity(self, msp_id: str, name: str) -> Revocation:
        """Put the identity's certificate on its org CA's CRL."""


class LocalCA:
    """The org CAs whose keys sit in `data_dir` (beside connection.json)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    def add_identity(self, msp_id: str, name: str, attrs: dict[str, str]) -> None:
        from network.devnet import pki

        try:
            pki.add_identity(self.data_dir, msp_id, name, attrs)
        except pki.IdentityExistsError as exc:
            raise IdentityExists(str(exc)) from None
        except pki.PKIError as exc:
            raise CAError(str(exc)) from None

    def identity_attrs(self, msp_id: str, name: str) -> dict[str, str]:
        from network.devnet import pki

        try:
            return pki.identity_attrs(self.data_dir, msp_id, name)
        except pki.PKIError as exc:
            raise CAError(str(exc)) from None

    def revoke_identity(self, msp_id: str, name: str) -> Revocation:
        from network.devnet import pki

        try:
            done = pki.revoke_identity(self.data_dir, msp_id, name)
        except pki.PKIError as exc:
            raise CAError(str(exc)) from None
        return Revocation(done.msp_id, done.serial_number, done.crl, done.newly_revoked)


def devnet_crl_recheck_s() -> float:
    """How long devnet may take to notice a CRL change (it re-reads msp/crls this often)."""
    from network.devnet.msp import CRL_RECHECK_S

    return float(CRL_RECHECK_S)


def local_ca(connection: Path) -> LocalCA:
    """The CA beside this connection.json."""
    return LocalCA(Path(connection).parent)
