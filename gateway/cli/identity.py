"""`mip identity add | revoke`: a staff member's Fabric identity (with `mip.role`) and gateway
token, and taking both away when the person leaves.

Both act for the org the gateway is (`Settings.org`; `--org` defaults to it, and another org
is refused with `not_this_org` before anything is made: gateway/core/org_scope.py). Minting
with the CA keys beside connection.json (devnet, scripts/network.sh's local network) happens
in development mode only; in production the org's Fabric CA enrols the person
(docs/deploy.md) and `add` checks that identity's `mip.role` in the connection profile and
issues the token.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from gateway.core.config import Settings
from gateway.core.org_scope import check_org_settings, require_own_org
from gateway.core.security import ROLES, StaffRegistry

from .common import CliError, ConfigOption, guarded, say, settings_from

app = typer.Typer(help="Staff identities and gateway tokens.", no_args_is_help=True)

# Fabric CA's attribute extension (hf.Attrs), which the chaincode reads mip.role from.
HF_ATTRS_OID = "1.2.3.4.5.6.7.8.1"


def issue_token(settings: Settings, org: str, name: str, role: str) -> str:
    """A token in the gateway's database (made with its keys on first use, so the database
    never exists without the keys the gateway will make it under)."""
    from gateway.services.state import open_data_dir

    db, keys = open_data_dir(settings)
    try:
        return StaffRegistry(db, settings.org).issue(org, name, role)
    finally:
        db.close()
        keys.close()


def acting_org(settings: Settings, org: str | None, action: str) -> str:
    """The org a command acts for: `--org`, else the gateway's own; another org than the
    gateway's is refused (NotThisOrg), as is a production gateway without an org."""
    check_org_settings(settings)
    if org is None:
        if settings.org is None:
            raise CliError("give --org: this gateway serves every org (development mode)", 2)
        return settings.org
    require_own_org(settings, org, action)
    return org


def enrolled_role(connection: Path, org: str, name: str) -> str | None:
    """The `mip.role` of `name`'s certificate in the connection profile (enrolled with the
    org's Fabric CA and placed there by its operator), None if it has none."""
    from cryptography import x509

    from gateway.fabric import ConnectionProfile, ConnectionProfileError

    try:
        cert_path = ConnectionProfile.load(connection).org(org).users[name].cert_path
    except (ConnectionProfileError, KeyError):
        raise CliError(f"no Fabric identity {name!r} of {org} in {connection}: enrol it with "
                       "the org's Fabric CA (docs/deploy.md) and add it to the profile") from None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        ext = cert.extensions.get_extension_for_oid(
            x509.ObjectIdentifier(HF_ATTRS_OID)).value
    except x509.ExtensionNotFound:
        return None
    try:
        attrs = json.loads(ext.value).get("attrs", {}) \
            if isinstance(ext, x509.UnrecognizedExtension) else {}
    except (ValueError, AttributeError):
        return None
    role = attrs.get("mip.role") if isinstance(attrs, dict) else None
    return str(role) if role is not None else None


def write_secret(path: Path, text: str) -> None:
    """Create `path` readable by its owner only (the token is a credential)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")


def mint(connection: Path, org: str, name: str, role: str) -> bool:
    """The Fabric identity `name` in `org` with `mip.role=role`; False if it existed with that
    role. An existing identity with another role is a CliError: the chaincode reads the role
    from the certificate, so a token for the new role would not match what the ledger sees."""
    from gateway.core.ca import IdentityExists, local_ca

    ca = local_ca(connection)
    try:
        ca.add_identity(org, name, {"mip.role": role})
    except IdentityExists:
        existing = ca.identity_attrs(org, name).get("mip.role")
        if existing != role:
            raise CliError(f"{name}@{org} already exists with mip.role={existing}; a "
                           "certificate's role cannot change: revoke it (`mip identity "
                           "revoke`) and add the person under a new name") from None
        return False
    return True


@app.command()
def add(name: Annotated[str, typer.Option(help="the person's identity name")],
        role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
        org: Annotated[str | None, typer.Option(
            help="MSP id, e.g. HospitalMSP (default: the gateway's org; another is refused)")
        ] = None,
        token_file: Annotated[Path | None, typer.Option(
            help="write the token here (mode 0600) instead of printing it")] = None,
        config: ConfigOption = None) -> None:
    """Mint NAME's Fabric identity in ORG (role attribute) and issue a gateway token
    (production: check NAME's Fabric CA identity and issue the token)."""
    def run() -> None:
        if role not in ROLES:
            raise CliError(f"unknown role {role!r} (known: {', '.join(ROLES)})", 2)
        settings = settings_from(config)
        acting = acting_org(settings, org, "mint identities or issue staff tokens")
        if not settings.connection.is_file():
            raise CliError(f"no network profile at {settings.connection} "
                           "(run `mip network up`)")
        if settings.mode == "development":
            minted = mint(settings.connection, acting, name, role)
            what = "minted" if minted else "kept existing"
        else:
            # A production gateway holds no CA key: the org's Fabric CA enrolled the person.
            enrolled = enrolled_role(settings.connection, acting, name)
            if enrolled != role:
                raise CliError(f"{name}@{acting}'s certificate has mip.role={enrolled}, not "
                               f"{role}: enrol it with the org's Fabric CA with "
                               f"--id.attrs 'mip.role={role}:ecert' (docs/deploy.md)")
            what = "found Fabric CA"
        token = issue_token(settings, acting, name, role)
        say(f"{what} identity {name}@{acting} (mip.role={role})")
        if token_file is not None:
            write_secret(token_file, token)
            say(f"gateway token written to {token_file} (mode 0600)")
        else:
            say("gateway token (shown once; send as `Authorization: Bearer <token>`):")
            say(token)
    guarded(run)


def revoke_tokens(db_path: Path, org: str, name: str, gateway_org: str | None = None) -> int:
    """Invalidate every gateway token of `name` in `org`; how many were live."""
    from gateway.store import open_database

    if not db_path.is_file():
        return 0
    db = open_database(db_path)
    try:
        return StaffRegistry(db, gateway_org).revoke_member(org, name)
    finally:
        db.close()


def is_devnet(connection: Path) -> bool:
    try:
        return bool(json.loads(connection.read_text(encoding="utf-8")).get("network") == "devnet")
    except (OSError, ValueError, AttributeError):
        return False


@app.command()
def revoke(name: Annotated[str, typer.Argument(help="the person's identity name")],
           org: Annotated[str | None, typer.Option(
               help="MSP id of your org (default: the gateway's org; another is refused)")
           ] = None,
           config: ConfigOption = None) -> None:
    """Revoke NAME in ORG: its certificate goes on the org CA's CRL and its gateway tokens stop
    working (401)."""
    given_org = org

    def run() -> None:
        from gateway.core.ca import CAError, devnet_crl_recheck_s, local_ca

        settings = settings_from(config)
        org = acting_org(settings, given_org, "revoke identities or staff tokens")
        if not settings.connection.is_file():
            raise CliError(f"no network profile at {settings.connection} "
                           "(run `mip network up`)")
        # Tokens first: they are the gateway's own and always revocable, whatever the CA says.
        tokens = revoke_tokens(settings.db_path, org, name, settings.org)
        say(f"gateway tokens of {name}@{org} revoked ({tokens})")
        try:
            done = local_ca(settings.connection).revoke_identity(org, name)
        except CAError as exc:
            raise CliError(f"Fabric identity not revoked: {exc}") from None
        say(f"certificate serial {done.serial_number:x} of {name}@{org} "
            f"{'added to' if done.newly_revoked else 'already on'} the CRL {done.crl}")
        if is_devnet(settings.connection):
            # devnet re-reads msp/crls at most every devnet_crl_recheck_s(): once that has
            # passed since the write, the next request by NAME is refused.
            time.sleep(2 * devnet_crl_recheck_s())
            say("devnet refuses the identity from now on")
        else:
            say("real Fabric: the CRL takes effect once a channel config update puts it in "
                f"{org}'s MSP (revocation_list), see docs/deploy.md")
    guarded(run)
