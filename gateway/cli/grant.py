"""`mip grant list --account P --key-file K`: an account's grants, for a holder who keeps
their own keys.

Listing grants is a holder-signed request (`grant.list`): the contract answers only the
account's own key. So this command needs that key: a PEM (PKCS#8) Ed25519 private key file,
as a self-custody holder exports it. Holders whose keys the gateway keeps list their grants
through the API with an unlocked desk session instead (`GET /api/v1/grants`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import CliError, ConfigOption, guarded, settings_from
from .service_state import print_json, with_state

app = typer.Typer(help="Grants of an account (holder-signed).", no_args_is_help=True)


def load_holder_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise CliError(f"cannot read key file {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise CliError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CliError(f"{path} holds no Ed25519 key (holder keys are Ed25519)")
    return key


@app.command("list")
def list_(account: Annotated[str, typer.Option(help="the account pseudonym (64 hex)")],
          key_file: Annotated[Path, typer.Option(
              help="PEM Ed25519 private key of that account (self-custody holders)")],
          config: ConfigOption = None) -> None:
    """List the account's grants, live or not."""
    def run() -> None:
        from gateway.holder.keys import sign_holder_request
        from gateway.services import grants

        settings = settings_from(config)
        key = load_holder_key(key_file)
        signed = sign_holder_request(key, "grant.list", {"account": account},
                                     settings.channel)

        async def call(state: Any) -> list[dict[str, Any]]:
            return await grants.list_grants(state, signed, account)
        print_json(with_state(settings, call))
    guarded(run)
