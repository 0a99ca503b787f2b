"""`mip serve`: the gateway over HTTP(S) (uvicorn) with the configured settings.

TLS (gateway/core/tls.py): `--tls-cert/--tls-key` serve the given certificate,
`--tls-self-signed NAME` one made at run time for NAME in `<data_dir>/tls/` (its fingerprint
printed). A host other than loopback without TLS is refused unless `--insecure-http`: the
counter page's camera needs a secure context, and tokens and face frames would travel in clear.
Before the server starts, the key provider is checked (gateway/core/keys): the file provider
(keys in <data_dir>/secrets.json) only with `mode: development` or `--dev`, and a data dir
holding the database without its keys (or, for the file provider, the reverse) is refused.
`--org` (MIP_ORG, `org:`) makes it that org's gateway (gateway/core/org_scope.py), with its
data dir and key labels by default under that org's name; in production it is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import CliError, ConfigOption, guarded, say, settings_from

INSECURE_REFUSAL = (
    "refusing to serve plain HTTP on {host}: browsers open the counter page's camera only in "
    "a secure context (https, or http on localhost), and staff tokens and face frames would "
    "cross the network in clear. Give --tls-cert/--tls-key, or --tls-self-signed NAME (a "
    "certificate for the name clients use), or --insecure-http when a TLS proxy in front "
    "terminates https")


def _uvicorn_logging(level: str) -> None:
    import logging
    import sys

    from gateway.core.logging import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("uvicorn")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def _tls_files(data_dir: Path, host: str, cert: Path | None, key: Path | None,
               self_signed_name: str | None, insecure_http: bool) -> tuple[Path, Path] | None:
    from gateway.core import tls

    given = tls.check_pair(cert, key)
    if given is not None and self_signed_name is not None:
        raise CliError("give either --tls-cert/--tls-key or --tls-self-signed, not both", 2)
    if self_signed_name is not None:
        made = tls.self_signed(data_dir / "tls", self_signed_name)
        say(f"{'made' if made.created else 'reusing'} a self-signed TLS certificate for "
            f"{self_signed_name}: {made.cert_file}")
        say(f"SHA-256 fingerprint {made.fingerprint}")
        return made.cert_file, made.key_file
    if given is None and not insecure_http and not tls.is_loopback(host):
        raise CliError(INSECURE_REFUSAL.format(host=host), 2)
    return given


def serve(config: ConfigOption = None,
          host: Annotated[str | None, typer.Option(help="override the host setting")] = None,
          port: Annotated[int | None, typer.Option(help="override the port setting")] = None,
          tls_cert: Annotated[Path | None, typer.Option(
              help="serve https with this PEM certificate (chain)", dir_okay=False)] = None,
          tls_key: Annotated[Path | None, typer.Option(
              help="the PEM private key of --tls-cert", dir_okay=False)] = None,
          tls_self_signed: Annotated[str | None, typer.Option(
              metavar="NAME", help="serve https with a self-signed certificate for NAME (the "
              "host name or IP clients use), made in <data_dir>/tls/ and reused")] = None,
          insecure_http: Annotated[bool, typer.Option(
              "--insecure-http",
              help="allow plain HTTP on a non-loopback host (only behind a TLS proxy)")] = False,
          org: Annotated[str | None, typer.Option(
              help="serve as this member org's gateway (MSP id, e.g. HospitalMSP): its own "
              "data dir, keys, staff and Fabric identities only; required in production")
          ] = None,
          dev: Annotated[bool, typer.Option(
              "--dev", help="development mode: accept the file key provider (keys in "
              "<data_dir>/secrets.json); never for production")] = False,
          ) -> None:
    """Run the gateway API (and the counter page) until interrupted."""
    def run() -> None:
        import uvicorn

        from gateway.core.keys import check_key_settings
        from gateway.core.org_scope import check_org_settings
        from gateway.main import create_app
        from gateway.services.state import open_data_dir

        settings = settings_from(config, host=host, port=port, org=org,
                                 mode="development" if dev else None)
        check_key_settings(settings)
        check_org_settings(settings)
        files = _tls_files(settings.data_dir, settings.host, tls_cert, tls_key,
                           tls_self_signed, insecure_http)
        # Opened once here so that a missing module, token or PIN is a one-line refusal
        # before the server starts (the app's lifespan opens both again for good).
        db, keys = open_data_dir(settings)
        db.close()
        keys.close()
        app = create_app(settings)
        say(f"serving as {settings.org}'s gateway (data dir {settings.data_dir})"
            if settings.org else "serving every org (development mode, one gateway for all)")
        # uvicorn's own log config would replace ours: its loggers get our format and the
        # redacting filter (gateway.core.logging); the "mip" loggers are set up in the app's
        # lifespan. uvicorn's access log is off: it prints concrete paths (ids, session
        # ids) and query strings; the app logs each request by route template instead
        # (gateway/core/access_log.py).
        _uvicorn_logging(settings.log_level)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                    access_log=False, ssl_certfile=None if files is None else str(files[0]),
                    ssl_keyfile=None if files is None else str(files[1]))
    guarded(run)
