"""`mip identity add`: a staff member's Fabric identity (with `mip.role`) and gateway token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.core.security import ROLES, StaffRegistry

from .common import CliError, ConfigOption, guarded, say, settings_from

app = typer.Typer(help="Staff identities and gateway tokens.", no_args_is_help=True)


def issue_token(db_path: Path, org: str, name: str, role: str) -> str:
    from gateway.store import open_database

    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(db_path)
    try:
        return StaffRegistry(db).issue(org, name, role)
    finally:
        db.close()


def write_secret(path: Path, text: str) -> None:
    """Create `path` readable by its owner only (the token is a credential)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")


def mint(connection: Path, org: str, name: str, role: str) -> bool:
    """The Fabric identity `name` in `org` with `mip.role=role`; False if it existed."""
    from network.devnet.pki import IdentityExistsError, add_identity

    try:
        add_identity(connection.parent, org, name, {"mip.role": role})
    except IdentityExistsError:
        return False
    return True


@app.command()
def add(org: Annotated[str, typer.Option(help="MSP id, e.g. HospitalMSP")],
        name: Annotated[str, typer.Option(help="the person's identity name")],
        role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
        token_file: Annotated[Path | None, typer.Option(
            help="write the token here (mode 0600) instead of printing it")] = None,
        config: ConfigOption = None) -> None:
    """Mint NAME's Fabric identity in ORG (role attribute) and issue a gateway token."""
    def run() -> None:
        if role not in ROLES:
            raise CliError(f"unknown role {role!r} (known: {', '.join(ROLES)})", 2)
        settings = settings_from(config)
        if not settings.connection.is_file():
            raise CliError(f"no network profile at {settings.connection} "
                           "(run `mip network up`)")
        minted = mint(settings.connection, org, name, role)
        token = issue_token(settings.db_path, org, name, role)
        say(f"{'minted' if minted else 'kept existing'} Fabric identity {name}@{org} "
            f"(mip.role={role})")
        if token_file is not None:
            write_secret(token_file, token)
            say(f"gateway token written to {token_file} (mode 0600)")
        else:
            say("gateway token (shown once; send as `Authorization: Bearer <token>`):")
            say(token)
    guarded(run)
