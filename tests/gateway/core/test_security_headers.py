"""Security headers on every response (CSP with frame-ancestors 'none', nosniff, referrer,
permissions with the camera on the counter page only, HSTS over TLS, no-store on the API),
and /docs served without a CDN in development, absent in production (/openapi.json stays)."""

from __future__ import annotations

import re
from pathlib import Path

from hardening_kit import bare_app, client


async def test_api_responses_carry_the_headers(tmp_path: Path) -> None:
    async with client(bare_app(tmp_path)) as http:
        response = await http.get("/api/v1/no-such-route")
    assert response.status_code == 404
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "camera=()" in headers["permissions-policy"]
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS would be ignored


async def test_unexpected_errors_carry_the_headers(tmp_path: Path) -> None:
    app = bare_app(tmp_path)

    @app.get("/api/v1/test-only/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    async with client(app) as http:
        response = await http.get("/api/v1/test-only/fail")
    assert response.status_code == 500
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


async def test_counter_page_may_use_the_camera_and_not_be_framed(tmp_path: Path) -> None:
    async with client(bare_app(tmp_path)) as http:
        page = await http.get("/counter/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "camera=(self)" in page.headers["permissions-policy"]
    # The page's own meta-tag policy is the header's, less frame-ancestors (which a meta tag
    # cannot carry): the header adds to it, it does not loosen it.
    meta = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', page.text)
    assert meta is not None
    assert set(meta.group(1).split("; ")) <= set(csp.split("; "))


async def test_hsts_over_tls(tmp_path: Path) -> None:
    async with client(bare_app(tmp_path), base_url="https://gateway") as http:
        response = await http.get("/openapi.json")
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")


async def test_docs_served_locally_in_development(tmp_path: Path) -> None:
    async with client(bare_app(tmp_path)) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/docs/") for s in sources), sources
        for source in sources:
            asset = await http.get(source)
            assert asset.status_code == 200, source
        # Scripts fall under default-src 'self': no inline script, no other origin.
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src" not in csp
        assert (await http.get("/redoc")).status_code == 404


async def test_docs_absent_in_production_openapi_kept(tmp_path: Path) -> None:
    async with client(bare_app(tmp_path, mode="production")) as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/redoc")).status_code == 404
        schema = await http.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "MIP gateway"


async def test_desk_pages_local_only_camera_where_needed(tmp_path: Path) -> None:
    """The check page, the issuer and enrolment desks, the holder wallet: the counter's
    policy, the camera on the enrolment and holder services desks only (the others take no
    photos), every script
    and style from the gateway itself, no inline script or handler."""
    async with client(bare_app(tmp_path)) as http:
        for path, camera in (("/check/", "camera=()"), ("/issuer/", "camera=()"),
                             ("/enrol/", "camera=(self)"), ("/holder-desk/", "camera=(self)"),
                             ("/wallet/", "camera=()")):
            page = await http.get(path)
            assert page.status_code == 200, path
            csp = page.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
            assert "'unsafe-inline'" not in csp
            assert camera in page.headers["permissions-policy"], path
            meta = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"',
                             page.text)
            assert meta is not None
            assert set(meta.group(1).split("; ")) <= set(csp.split("; "))
            assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "inline script"
            assert not re.search(r"<[^>]+\son[a-z]+=", page.text), "inline handler"
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources, path
            for source in sources:
                assert not source.startswith(("http:", "https:", "//")), source
                asset = await http.get(source if source.startswith("/") else path + source)
                assert asset.status_code == 200, source


IMPORT = re.compile(r'^import\s[^;]*?\sfrom\s+"([^"]+)";', re.MULTILINE)


async def test_page_modules_and_their_imports_are_served_as_javascript(tmp_path: Path) -> None:
    """Every page is one `<script type="module">`; the modules it imports (and theirs) are
    the gateway's own, by path, and served as JavaScript (a browser refuses a module of any
    other type under nosniff). A missing shared module would otherwise show only in a
    browser."""
    async with client(bare_app(tmp_path)) as http:
        for path in ("/counter/", "/check/", "/issuer/", "/enrol/", "/holder-desk/"):
            page = await http.get(path)
            scripts = re.findall(r"<script\b([^>]*)>", page.text)
            assert len(scripts) == 1 and 'type="module"' in scripts[0], (path, scripts)
            pending = [path + re.findall(r'src="([^"]+)"', scripts[0])[0]]
            seen: set[str] = set()
            while pending:
                url = pending.pop()
                if url in seen:
                    continue
                seen.add(url)
                module = await http.get(url)
                assert module.status_code == 200, url
                assert module.headers["content-type"].startswith("text/javascript"), url
                for target in IMPORT.findall(module.text):
                    assert target.startswith("/") or target.startswith("./"), target
                    base = url.rsplit("/", 1)[0]
                    pending.append(base + target[1:] if target.startswith("./") else target)
            # Each page reaches the shared sign-in or API modules under /desk/.
            assert any(u.startswith("/desk/") for u in seen), (path, seen)
