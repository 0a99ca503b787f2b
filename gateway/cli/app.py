"""The `mip` command: `python -m gateway ...` or the `mip` console script (gateway.cli.app:main).

Every command takes `--config FILE` (YAML settings; MIP_* environment variables override).
"""

from __future__ import annotations

import typer

from . import (
    audit,
    counter_key,
    dataset,
    demo,
    grant,
    identity,
    linkage,
    network,
    passport,
    portrait_key,
    serve,
)

app = typer.Typer(name="mip", help="MIP: identity passports, credentials and grants on a "
                  "permissioned ledger.", no_args_is_help=True, add_completion=False)
app.add_typer(network.app, name="network")
app.add_typer(identity.app, name="identity")
app.add_typer(passport.app, name="passport")
app.add_typer(grant.app, name="grant")
app.add_typer(linkage.app, name="linkage")
app.add_typer(dataset.app, name="dataset")
app.add_typer(counter_key.app, name="counter-key")
app.add_typer(portrait_key.app, name="portrait-key")
app.command("serve")(serve.serve)
app.command("audit")(audit.audit)
app.command("demo")(demo.demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
