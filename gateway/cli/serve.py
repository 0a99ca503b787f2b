"""`mip serve`: the gateway over HTTP (uvicorn) with the configured settings."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ConfigOption, guarded, settings_from


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
        # uvicorn's own log config would replace ours (gateway.core.logging sets it up in
        # the app's lifespan, with the redacting filter).
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                    access_log=True)
    guarded(run)
