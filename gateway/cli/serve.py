"""`mip serve`: the gateway over HTTP (uvicorn) with the configured settings."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ConfigOption, guarded, settings_from


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


def serve(config: ConfigOption = None,
          host: Annotated[str | None, typer.Option(help="override the host setting")] = None,
          port: Annotated[int | None, typer.Option(help="override the port setting")] = None
          ) -> None:
    """Run the gateway API (and the counter page) until interrupted."""
    def run() -> None:
        import uvicorn

        from gateway.main import create_app

        settings = settings_from(config, host=host, port=port)
        app = create_app(settings)
        # uvicorn's own log config would replace ours: its loggers get our format and the
        # redacting filter (gateway.core.logging); the "mip" loggers are set up in the app's
        # lifespan.
        _uvicorn_logging(settings.log_level)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                    access_log=True)
    guarded(run)
