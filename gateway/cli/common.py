"""What every `mip` command shares: settings from --config, one-line errors, progress.

Typed errors (configuration, API, ledger, face, devnet) become one line on stderr and a
non-zero exit; nothing else is caught, so a real bug still shows its traceback.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gateway.core.config import ConfigError, Settings, load_settings

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file (default: $MIP_CONFIG); "
                 "MIP_* environment variables override it", dir_okay=False)]


class CliError(Exception):
    """A refusal the CLI reports as one line and exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None


def _typed_errors() -> tuple[type[BaseException], ...]:
    from face_engine.errors import FaceError
    from gateway.core.ca import CAError
    from gateway.core.errors import ApiError
    from gateway.fabric import ConnectionProfileError, GatewayError

    return (CliError, ConfigError, ApiError, GatewayError, ConnectionProfileError, FaceError,
            CAError)


def guarded(fn: Callable[[], T]) -> T:
    """Run `fn`; a typed error becomes `error: <message>` on stderr and a non-zero exit."""
    try:
        return fn()
    except _typed_errors() as exc:
        # A chaincode refusal says why in its own message ("conflict: ..."); the gateway's
        # wrapper around it ("failed to endorse transaction ...") says only where.
        message = (getattr(exc, "chaincode_message", None) or getattr(exc, "message", None)
                   or str(exc) or type(exc).__name__)
        code = getattr(exc, "code", 1)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code if isinstance(code, int) and code > 0 else 1) from None


def say(message: str = "") -> None:
    typer.echo(message)


@contextmanager
def progress(label: str, *, stream: Any = None) -> Iterator[None]:
    """A spinner on a terminal (a plain line otherwise) while a long step runs, then its
    duration: `label ... done (3.1 s)`."""
    out = stream or sys.stderr
    started = time.monotonic()
    stop = threading.Event()
    spinner: threading.Thread | None = None
    if getattr(out, "isatty", lambda: False)():
        def spin() -> None:
            frames = "|/-\\"
            i = 0
            while not stop.wait(0.15):
                out.write(f"\r{label} {frames[i % 4]} {time.monotonic() - started:4.0f} s")
                out.flush()
                i += 1
        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
    else:
        out.write(f"{label} ...\n")
        out.flush()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        if spinner is not None:
            spinner.join()
            out.write("\r")
        out.write(f"{label} ... {'done' if ok else 'failed'} "
                  f"({time.monotonic() - started:.1f} s)\n")
        out.flush()
