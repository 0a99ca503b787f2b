"""`python -m gateway` is the `mip` command line."""

from gateway.cli.app import main

main()
