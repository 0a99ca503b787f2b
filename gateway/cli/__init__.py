"""The `mip` command line (Typer): network, identities, the gateway server, reads, the demo."""
