"""`mip portrait-key ...`: each org's portrait keys (the pharmacy face check's portrait,
docs/gateway.md "Pharmacy face check: the portrait").

- `mip portrait-key register --org ORG --as ADMIN`: register this gateway's portrait signing
  and sealing keys of ORG on the ledger (`Portrait:RegisterKeys`; idempotent: nothing is
  written when the ledger already has them; again after the `portrait` key changes).
- `mip portrait-key show ORG`: the org's portrait keys as the ledger has them.

Both run the services the API runs (gateway/services/portrait_keys.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.core.security import StaffMember

from .common import ConfigOption, guarded, settings_from
from .service_state import AsOption, OrgOption, print_json, with_state

app = typer.Typer(help="Portrait keys (the pharmacy's face check without the enrolling org's "
                  "keys).", no_args_is_help=True)


@app.command("register")
def register(org: OrgOption, as_: AsOption, config: ConfigOption = None) -> None:
    """Register this gateway's portrait keys of your org (admin; idempotent)."""
    def run() -> None:
        from gateway.services import portrait_keys

        member = StaffMember(org, as_, "admin")  # the contract checks the real role

        async def call(state: Any) -> dict[str, Any]:
            return await portrait_keys.register(state, member)
        print_json(with_state(settings_from(config), call))
    guarded(run)


@app.command("show")
def show(org: Annotated[str, typer.Argument(help="the org's MSP id")],
         config: ConfigOption = None) -> None:
    """Print the org's portrait keys as registered on the ledger."""
    def run() -> None:
        from gateway.services import portrait_keys
        from gateway.services.ledger_reads import public_reader

        async def call(state: Any) -> dict[str, Any]:
            return await portrait_keys.keys_record(public_reader(state), org)
        print_json(with_state(settings_from(config), call))
    guarded(run)
