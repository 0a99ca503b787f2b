"""`mip linkage ...`: prove to one member org that two accounts are one holder's, and check it.

- `mip linkage register-key --org ORG --as ADMIN`: register this gateway's verifier key of ORG
  on the ledger (once per org; again after the `linkage_key_seed` secret changes).
- `mip linkage key ORG`: the org's verifier key as the ledger has it.
- `mip linkage prove --account-a P --key-a K --account-b Q --key-b L --verifier ORG`: for a
  holder who keeps their own keys (PEM Ed25519 account keys, as `mip grant list` takes them);
  prints the proof, or writes it to `--out`. Holders whose keys the gateway keeps prove
  through the API with an unlocked desk session instead (`POST /api/v1/linkage/proofs`).
- `mip linkage verify PROOF_FILE --org ORG`: the verifier org's check, with this gateway's
  private key of ORG; it reads the gateway's secrets, so it is for that gateway's operator.

All four run the same services as the API (gateway/services/linkage.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.core.security import StaffMember

from .common import CliError, ConfigOption, guarded, say, settings_from
from .grant import load_holder_key
from .identity import write_secret
from .service_state import AsOption, OrgOption, print_json, with_state

app = typer.Typer(help="Linkage proofs: two accounts, one holder, shown to one org.",
                  no_args_is_help=True)

NonceOption = Annotated[str | None, typer.Option(
    help="the verifier's challenge (16 to 128 characters)")]


@app.command("register-key")
def register_key(org: OrgOption, as_: AsOption, config: ConfigOption = None) -> None:
    """Register this gateway's linkage verifier key of your org (admin; idempotent)."""
    def run() -> None:
        from gateway.services import linkage

        member = StaffMember(org, as_, "admin")  # the contract checks the real role

        async def call(state: Any) -> dict[str, Any]:
            return await linkage.register_key(state, member)
        print_json(with_state(settings_from(config), call))
    guarded(run)


@app.command("key")
def key(org: Annotated[str, typer.Argument(help="the verifier org's MSP id")],
        config: ConfigOption = None) -> None:
    """Print the org's linkage verifier key as registered on the ledger."""
    def run() -> None:
        from gateway.services import linkage
        from gateway.services.ledger_reads import public_reader

        async def call(state: Any) -> dict[str, Any]:
            return await linkage.verifier_record(public_reader(state), org)
        print_json(with_state(settings_from(config), call))
    guarded(run)


@app.command("prove")
def prove(account_a: Annotated[str, typer.Option(help="first account pseudonym (64 hex)")],
          key_a: Annotated[Path, typer.Option(help="PEM Ed25519 private key of account A")],
          account_b: Annotated[str, typer.Option(help="second account pseudonym (64 hex)")],
          key_b: Annotated[Path, typer.Option(help="PEM Ed25519 private key of account B")],
          verifier: Annotated[str, typer.Option(help="the one org that may check the proof")],
          ttl: Annotated[int, typer.Option(help="seconds the proof stays valid")] = 3600,
          nonce: NonceOption = None,
          via: Annotated[str | None, typer.Option(
              help="org whose gateway identity reads the ledger for you "
                   "(default: account A's institution)")] = None,
          out: Annotated[Path | None, typer.Option(
              help="write the proof here (owner-only) instead of printing it")] = None,
          config: ConfigOption = None) -> None:
    """Prove to VERIFIER that accounts A and B are yours (self-custody keys)."""
    def run() -> None:
        from gateway.services import linkage
        from gateway.services.ledger_reads import account_record

        private_a, private_b = load_holder_key(key_a), load_holder_key(key_b)

        async def call(state: Any) -> dict[str, Any]:
            reader = via or str((await account_record(state, account_a))["institution"])
            return await linkage.prove(state, reader, (account_a, private_a),
                                       (account_b, private_b), verifier, ttl, nonce)
        result = with_state(settings_from(config), call)
        if out is None:
            print_json(result)
        else:
            write_secret(out, json.dumps(result["proof"], sort_keys=True))
            say(f"linkage proof for {verifier} written to {out} "
                f"(expires {result['proof']['expires']})")
    guarded(run)


@app.command("verify")
def verify(proof_file: Annotated[Path, typer.Argument(help="the proof (JSON) as received")],
           org: OrgOption, nonce: NonceOption = None, config: ConfigOption = None) -> None:
    """Check a linkage proof designated to your org, with this gateway's key of it."""
    def run() -> None:
        from gateway.services import linkage

        try:
            proof = json.loads(proof_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {proof_file}: {exc.strerror}") from None
        except ValueError:
            raise CliError(f"{proof_file} is not JSON") from None
        if isinstance(proof, dict) and set(proof) >= {"proof", "verifier_org"}:
            proof = proof["proof"]  # the whole output of `mip linkage prove`

        async def call(state: Any) -> dict[str, Any]:
            return await linkage.verify(state, org, proof, nonce)
        print_json(with_state(settings_from(config), call))
    guarded(run)
