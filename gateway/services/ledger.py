"""Ledger access for the service: one Gateway connection per Fabric identity, reused.

Staff calls are signed by the staff member's own identity (`for_staff`); holder requests
(signed by the holder's own keys) are carried by the gateway's service identity of an org
(`carrier`, Fabric role `gateway`). The same code runs against devnet and real peers: only
`Settings.connection` differs.

An org's gateway (`Settings.org`) loads identities of its own org only: every signing identity
is taken through `contract()`, which refuses another org's (gateway/core/org_scope.py), so
no request, staff token or holder record can make it sign as another org.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography import x509

from chaincode.protocol.fabric_identity import go_distinguished_name
from gateway.core.ca import CAError, IdentityExists, local_ca
from gateway.core.config import Settings
from gateway.core.errors import LedgerUnavailable, NotFound
from gateway.core.org_scope import require_own_org
from gateway.core.security import StaffMember
from gateway.fabric import ConnectionProfile, ConnectionProfileError, Contract, Gateway

SERVICE_USER = "mip-gateway"
# Identity strings remembered (`client_id`): one per staff member and service identity.
MAX_REMEMBERED_IDENTITIES = 1024


class Ledger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._gateways: dict[tuple[str, str], Gateway] = {}
        self._lock = asyncio.Lock()
        # The parsed profile and identity strings, each keyed by the exact bytes it was made
        # of (the files are re-read on every call, a few kilobytes): a pickup's verdict and
        # every peer-signed request ask for them, and parsing the profile (its paths
        # resolved) and the certificate every time cost about ten times the re-read. A file
        # changed on disk (an identity minted, a certificate re-issued) is parsed afresh at
        # once.
        self._profile: tuple[bytes, ConnectionProfile] | None = None
        self._client_ids: dict[tuple[Path, bytes], str] = {}

    @property
    def connection(self) -> Path:
        return self.settings.connection

    def profile(self) -> ConnectionProfile:
        try:
            raw = self.connection.read_bytes()
        except OSError:
            raw = None  # ConnectionProfile.load says why, as before
        cached = self._profile
        if raw is not None and cached is not None and cached[0] == raw:
            return cached[1]
        try:
            profile = ConnectionProfile.load(self.connection)
        except ConnectionProfileError as exc:
            raise LedgerUnavailable(f"no usable network profile: {exc}") from None
        # Kept under the bytes read before the parse: if the file changed in between, the
        # next call sees other bytes and parses again.
        self._profile = None if raw is None else (raw, profile)
        return profile

    def orgs(self) -> list[str]:
        return [org.msp_id for org in self.profile().organizations.values()]

    def reader_org(self) -> str:
        """The org whose service identity makes public reads: this gateway's own (the
        network's first org on an all-orgs gateway)."""
        return self.settings.org or self.orgs()[0]

    def contract(self, org: str, user: str) -> Contract:
        require_own_org(self.settings, org, f"sign as {user!r}")
        key = (org, user)
        gateway = self._gateways.get(key)
        if gateway is None:
            try:
                gateway = Gateway.from_connection(self.connection, org, user)
            except ConnectionProfileError as exc:
                raise LedgerUnavailable(
                    f"no Fabric identity {user!r} in {org} on this network",
                    code="identity_unknown") from exc
            self._gateways[key] = gateway
        return gateway.get_network(self.settings.channel).get_contract(self.settings.chaincode)

    def client_id(self, org: str, user: str) -> str:
        """The identity string the chaincode sees for `user` of `org` (Fabric cid's
        `x509::<subject>::<issuer>`), from its certificate in the connection profile."""
        try:
            cert_path = self.profile().org(org).users[user].cert_path
        except (ConnectionProfileError, KeyError):
            raise NotFound(f"no Fabric identity {user!r} in {org} on this gateway",
                           code="identity_unknown") from None
        pem = cert_path.read_bytes()
        key = (cert_path, pem)
        known = self._client_ids.get(key)
        if known is not None:
            return known
        cert = x509.load_pem_x509_certificate(pem)
        identity = (f"x509::{go_distinguished_name(cert.subject)}"
                    f"::{go_distinguished_name(cert.issuer)}")
        if len(self._client_ids) >= MAX_REMEMBERED_IDENTITIES:
            self._client_ids.pop(next(iter(self._client_ids)))
        self._client_ids[key] = identity
        return identity

    def for_staff(self, member: StaffMember) -> Contract:
        return self.contract(member.org, member.name)

    def carrier(self, org: str) -> Contract:
        """The gateway's own identity in `org` (role `gateway`), carrying holder requests."""
        return self.contract(org, SERVICE_USER)

    async def close(self) -> None:
        gateways, self._gateways = list(self._gateways.values()), {}
        for gateway in gateways:
            await gateway.close()


def ensure_service_identities(connection: Path, orgs: list[str] | None = None) -> list[str]:
    """Mint the gateway's service identity (role `gateway`) in each org that lacks one.

    Works where the org CAs' keys sit beside connection.json (devnet, scripts/network.sh's
    local network); production issues it from Fabric CA (docs/deploy.md). Returns the orgs
    for which one was minted.
    """
    ca = local_ca(connection)
    profile = ConnectionProfile.load(connection)
    minted = []
    for org in profile.organizations.values():
        if orgs is not None and org.msp_id not in orgs:
            continue
        if SERVICE_USER in org.users:
            continue
        try:
            ca.add_identity(org.msp_id, SERVICE_USER, {"mip.role": "gateway"})
            minted.append(org.msp_id)
        except IdentityExists:
            pass
        except CAError as exc:
            raise LedgerUnavailable(
                f"cannot mint the gateway identity in {org.msp_id}: {exc}") from None
    return minted
