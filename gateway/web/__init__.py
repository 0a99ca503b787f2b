"""The counter web page, served by the gateway at /counter/."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount_web(app: FastAPI) -> None:
    if (STATIC / "index.html").is_file():
        app.mount("/counter", StaticFiles(directory=STATIC, html=True), name="counter")
