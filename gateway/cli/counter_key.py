"""`mip counter-key revoke ID --org PharmacyMSP --as ADMIN`: revoke a pharmacy counter's
attestation key on the ledger (a lost, stolen or retired counter)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.core.security import StaffMember

from .common import ConfigOption, guarded, say, settings_from
from .service_state import AsOption, OrgOption, print_json, with_state

app = typer.Typer(help="Pharmacy counter keys (face-check attestations).", no_args_is_help=True)


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="the counter key id (counter-...)")],
           org: OrgOption, as_: AsOption, config: ConfigOption = None) -> None:
    """Revoke counter key KEY_ID (a PharmacyMSP admin): Pharmacy:Dispense refuses every
    attestation it signs from then on. Final for that key id."""
    def run() -> None:
        from gateway.services import counter_key

        # The claimed role only lets the call through the gateway's early check; the contract
        # decides from the certificate's mip.role attribute.
        member = StaffMember(org, as_, "admin")

        async def call(state: Any) -> dict[str, Any]:
            return await counter_key.revoke(state, member, key_id)
        record = with_state(settings_from(config), call)
        say(f"counter key {key_id} revoked")
        print_json(record)
    guarded(run)
