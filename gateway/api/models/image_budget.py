"""What one request may ask the face workers to decode: at most `MAX_FRAMES` images and
`MAX_REQUEST_PIXELS` pixels in all, checked from the images' headers before any is decoded.

Each image is bounded on its own (2 MiB, 20 MP: face_engine/image_io.py), but twelve 20 MP
JPEGs in one request held the face workers for 17.5 s. Twelve Full-HD frames (24.9 MP) fit the
request budget; the counter page and the enrolment camera send 640x480 frames.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic_core import PydanticCustomError

from face_engine.image_io import header_pixels
from gateway.core.errors import PIXELS_ERROR

MAX_FRAMES = 12
MAX_FRAME_BYTES = 2 * 1024 * 1024
# Base64 of at most MAX_FRAME_BYTES: checked before anything is decoded.
MAX_FRAME_CHARS = (MAX_FRAME_BYTES + 2) // 3 * 4
MAX_REQUEST_PIXELS = 25_000_000


def check_request_pixels(images: Iterable[bytes]) -> None:
    """Refuse a request whose images' headers add up to more than MAX_REQUEST_PIXELS."""
    total = 0
    for image in images:
        total += header_pixels(image)
        if total > MAX_REQUEST_PIXELS:
            raise PydanticCustomError(
                PIXELS_ERROR, "the images of one request may hold at most {limit} pixels",
                {"limit": MAX_REQUEST_PIXELS})
