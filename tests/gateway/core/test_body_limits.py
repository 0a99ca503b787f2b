"""Bodies are bounded while they are read (413 `body_too_large` before the whole body is
buffered, per-route limits), and one request's images are bounded in count and in pixels
before any is decoded (413 `too_many_pixels`)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hardening_kit import bare_app, client
from PIL import Image

import face_engine.image_io as image_io
from gateway.api.body_limits import DEFAULT_BODY_LIMIT, DOCUMENT_BODY_LIMIT, FRAMES_BODY_LIMIT
from gateway.api.models.image_budget import MAX_FRAMES, MAX_REQUEST_PIXELS
from gateway.api.models.pharmacy import FramesIn

CHUNK = 64 * 1024


class Stream:
    """A request body of `total` bytes in chunks, counting what the app pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.total:
            chunk = b" " * min(CHUNK, self.total - sent)
            sent += len(chunk)
            self.pulled = sent
            yield chunk


async def test_streamed_body_over_the_limit_is_refused_while_reading(tmp_path: Path) -> None:
    stream = Stream(50 * 1024 * 1024)
    async with client(bare_app(tmp_path)) as http:
        # No Content-Length (chunked): the limit is found by counting.
        response = await http.post("/api/v1/analytics/queries", content=stream,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"
    assert response.json()["error"]["details"]["limit"] == DEFAULT_BODY_LIMIT
    # Reading stopped at the first chunk over the limit, not at the end of the 50 MB.
    assert stream.pulled <= DEFAULT_BODY_LIMIT + CHUNK


async def test_declared_length_over_the_limit_is_refused_before_reading(
        tmp_path: Path) -> None:
    # Refused before one byte of the body is read, whatever the route would have answered,
    # with the same typed error as a body refused while read (Starlette's own answer is
    # plain text "Content Too Large": gateway/api/request_guard.py makes it typed).
    limits = {"/api/v1/analytics/queries": DEFAULT_BODY_LIMIT,
              "/api/v1/checks": DOCUMENT_BODY_LIMIT,
              "/api/v1/pharmacy/pickups/p1/frames": FRAMES_BODY_LIMIT,
              "/api/v1/no/such/route": DEFAULT_BODY_LIMIT}
    async with client(bare_app(tmp_path)) as http:
        for path, limit in limits.items():
            stream = Stream(limit + 1)
            response = await http.post(path, content=stream, headers={
                "Content-Type": "application/json", "Content-Length": str(stream.total)})
            assert response.status_code == 413, path
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"error": {
                "code": "body_too_large", "details": {"limit": limit},
                "message": "the request body is larger than this route accepts"}}, path
            assert response.headers["x-content-type-options"] == "nosniff"
            assert stream.pulled == 0


async def test_multipart_bodies_over_the_limit_get_the_same_typed_413(tmp_path: Path) -> None:
    # No route takes multipart, but a client may send it anywhere: the limit counts bytes,
    # whatever their encoding, before any form parser buffers a part.
    typed = {"code": "body_too_large", "details": {"limit": DEFAULT_BODY_LIMIT},
             "message": "the request body is larger than this route accepts"}
    async with client(bare_app(tmp_path)) as http:
        declared = await http.post("/api/v1/analytics/queries", files={
            "file": ("big.bin", b"x" * (DEFAULT_BODY_LIMIT + 1), "application/octet-stream")})
        assert declared.status_code == 413, declared.text
        assert declared.json() == {"error": typed}
        stream = Stream(8 * DEFAULT_BODY_LIMIT)
        chunked = await http.post("/api/v1/analytics/queries", content=stream, headers={
            "Content-Type": "multipart/form-data; boundary=mipboundary"})
        assert chunked.status_code == 413, chunked.text
        assert chunked.json() == {"error": typed}
        assert stream.pulled <= DEFAULT_BODY_LIMIT + CHUNK


async def test_routes_that_carry_documents_or_frames_accept_more(tmp_path: Path) -> None:
    body = b'{"credential_id": "c1", "salt": "AAAA", "content": "' + b"x" * (
        2 * DEFAULT_BODY_LIMIT) + b'"}'
    app = bare_app(tmp_path)
    app.state.mip = None  # the schema refuses the body before any state is used
    async with client(app) as http:
        checks = await http.post("/api/v1/checks", content=body,
                                 headers={"Content-Type": "application/json"})
        queries = await http.post("/api/v1/analytics/queries", content=body,
                                  headers={"Content-Type": "application/json"})
    # /checks reads and validates it (content over 1,000,000 characters: the schema's 422).
    assert checks.status_code == 422 and checks.json()["error"]["code"] == "invalid_request"
    assert queries.status_code == 413


def _jpeg(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 110, 100)).save(buffer, "JPEG", quality=10)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> object:
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(image_io, "decode_image", refuse)


async def test_pixels_per_request_are_bounded_before_decoding(
        tmp_path: Path, no_decoding: None) -> None:
    app = bare_app(tmp_path)

    @app.post("/test-only/frames")
    async def frames(body: FramesIn) -> int:
        return len(body.frames)

    big = _jpeg(4000, 3000)  # 12 MP: three are over the request's budget, one is not
    assert 3 * 4000 * 3000 > MAX_REQUEST_PIXELS >= 2 * 4000 * 3000
    async with client(app) as http:
        refused = await http.post("/test-only/frames", json={
            "challenge_id": "c", "frames": [{"image": big}] * 3})
        accepted = await http.post("/test-only/frames", json={
            "challenge_id": "c", "frames": [{"image": big}] * 2})
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == {
        "code": "too_many_pixels", "details": {"limit": MAX_REQUEST_PIXELS},
        "message": f"the images of one request may hold at most {MAX_REQUEST_PIXELS} "
                   "pixels in all"}
    assert accepted.status_code == 200 and accepted.json() == 2


async def test_frames_per_request_are_bounded(tmp_path: Path, no_decoding: None) -> None:
    app = bare_app(tmp_path)

    @app.post("/test-only/frames")
    async def frames(body: FramesIn) -> int:
        return len(body.frames)

    small = _jpeg(64, 64)
    async with client(app) as http:
        response = await http.post("/test-only/frames", json={
            "challenge_id": "c", "frames": [{"image": small}] * (MAX_FRAMES + 1)})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["problems"][0]["loc"] == ["body", "frames"]
