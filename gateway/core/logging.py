"""Logging for the gateway: one line per event, and nothing private in any line.

Handlers never see request bodies: routes log what happened (ids, codes, durations), not the
data. As a second line of defence, `RedactingFilter` drops any record whose rendered message
looks like it carries key material or image data (long base64/hex runs, PEM blocks), so a
mistake in a future log call cannot leak a template or a key; tests scan the logs of a full
demo run for canaries. It also strips every record's traceback (`exc_info`, `stack_info`):
an exception's text and its frames may carry request data, and a formatter would print them.
What stays is the exception's type and where it was raised (gateway/core/failures.py).
"""

from __future__ import annotations

import logging
import re
import sys

from gateway.core.failures import describe, location

_SECRET_SHAPES = re.compile(
    r"-----BEGIN [A-Z ]+-----"           # PEM
    r"|[A-Za-z0-9+/]{120,}={0,2}"        # long base64 (images, embeddings, wrapped secrets)
    r"|\b[0-9a-f]{129,}\b"               # hex longer than any id or digest we log
)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not take the request down
            return False
        if _SECRET_SHAPES.search(message):
            record.msg = "[record withheld: it looked like it carried key or image data]"
            record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # The rendered message stays (it passed the check above); the exception is reduced
            # to its type and location, its text and frames dropped.
            suffix = f" [{describe(exc)} at {location(exc)}]"
            record.msg = f"{record.msg}{suffix.replace('%', '%%') if record.args else suffix}"
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_logging(level: str = "INFO", stream: object | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("mip")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # uvicorn's access log (off under `mip serve`: it prints concrete paths, which carry
    # ids, and query strings; gateway/core/access_log.py logs route templates instead) and
    # its other loggers go through the same filter where they are used.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactingFilter())
