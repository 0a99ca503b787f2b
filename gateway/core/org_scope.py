"""One gateway per org: which org this gateway is, and the refusal of anything that would act
as another.

With `Settings.org` set (`mip serve --org`, MIP_ORG), the gateway is that member org's: its
own data dir and key labels (gateway/core/config.py), staff tokens of that org only
(gateway/core/security.py), the anoncreds KYC issuer of that org only (gateway/services/
kyc.py), and Fabric identities of that org only (gateway/services/ledger.py, `mip identity`).
A call that would sign, mint, issue or load as another org gets `NotThisOrg` (403
`not_this_org`, naming both) before it changes anything: one org's operator then holds no
other org's keys, people or faces, and a compromised gateway cannot speak for another org.

`org` unset is the single-process arrangement where one gateway serves every org (devnet,
the demo, the tests); the per-org deployment replaces it, so it is accepted in development
mode only.
"""

from __future__ import annotations

from .config import ConfigError, Settings
from .errors import Forbidden

ORG_REQUIRED = (
    "no org configured: in production each member org runs its own gateway, which holds that "
    "org's keys, staff and identities only. Set `org: <MSP id>` in the config file, MIP_ORG, "
    "or `mip serve --org HospitalMSP|SchoolMSP|PharmacyMSP`; one gateway for every org is "
    "the development arrangement (`mode: development`, `mip serve --dev`)")


class NotThisOrg(Forbidden):
    """A request to act as an org other than the gateway's own."""

    status, code = 403, "not_this_org"

    def __init__(self, gateway_org: str, requested_org: str, action: str) -> None:
        super().__init__(
            f"this is {gateway_org}'s gateway: it does not {action} for {requested_org} "
            f"(each org runs its own gateway)",
            details={"gateway_org": gateway_org, "requested_org": requested_org})


def check_org_settings(settings: Settings) -> None:
    """Refuse a production gateway that is not one org's."""
    if settings.org is None and settings.mode != "development":
        raise ConfigError(ORG_REQUIRED)


def require_own_org(settings: Settings, org: str, action: str) -> None:
    """Refuse (NotThisOrg) acting as `org` on another org's gateway; an all-orgs gateway
    (development, `org` unset) acts as any."""
    if settings.org is not None and org != settings.org:
        raise NotThisOrg(settings.org, org, action)

