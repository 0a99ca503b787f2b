"""The web pages, served by the gateway itself: the pharmacy counter at /counter/, the
employer's credential check at /check/, the issuer desk at /issuer/, the enrolment desk at
/enrol/, the holder services desk at /holder-desk/ (the ES modules they import, and the
desks' style, at /desk/), the holder's wallet at /wallet/, and in
development the API's Swagger UI at /docs (its files from the swagger-ui-bundle package:
nothing from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
DOCS = Path(__file__).parent / "docs"
PAGES = Path(__file__).parent / "pages"
# URL prefix -> folder under pages/ (see gateway/core/security_headers.py for each one's
# policy: which may use the camera).
PAGE_FOLDERS = {"/desk": "common", "/check": "check", "/issuer": "issuer", "/enrol": "enrol",
                "/holder-desk": "holder_desk", "/wallet": "wallet"}


def mount_web(app: FastAPI) -> None:
    if (STATIC / "index.html").is_file():
        app.mount("/counter", StaticFiles(directory=STATIC, html=True), name="counter")
    for prefix, folder in PAGE_FOLDERS.items():
        directory = PAGES / folder
        if directory.is_dir():
            app.mount(prefix, StaticFiles(directory=directory, html=True), name=folder)


def mount_docs(app: FastAPI) -> None:
    """/docs: Swagger UI over /openapi.json, every file served by the gateway."""
    from swagger_ui_bundle import swagger_ui_path

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(DOCS / "index.html")

    @app.get("/docs/init.js", include_in_schema=False)
    async def docs_init() -> FileResponse:
        return FileResponse(DOCS / "init.js", media_type="text/javascript")

    app.mount("/docs/assets", StaticFiles(directory=Path(str(swagger_ui_path))),
              name="docs-assets")
