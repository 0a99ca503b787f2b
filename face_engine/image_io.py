"""Decode untrusted image bytes into a BGR ``uint8`` array, refusing what we do not accept.

Checks, cheapest first: byte size, magic bytes (JPEG, PNG, WebP only), the dimensions
read from the header (Pillow parses the header lazily, so a 60,000 x 60,000 "pixel bomb"
is refused before any pixel is decoded), then a full decode that fails on truncated or
corrupt data. EXIF orientation is applied so that phone photos are upright.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from face_engine.errors import ImageCorrupt, ImageTooLarge, ImageTooSmall, UnsupportedFormat

MAX_BYTES = 15 * 1024 * 1024
MAX_PIXELS = 20_000_000
# A face needs at least ~30 px between the eyes (see quality.py); below 64 px on the short
# side no usable face can be in the picture.
MIN_SIDE = 64

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def sniff_format(data: bytes) -> str | None:
    """Return ``jpeg``/``png``/``webp`` from the magic bytes, or ``None``."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def header_pixels(data: bytes) -> int:
    """Width x height from the image's header, without decoding a pixel (0 when there is no
    readable header: `decode_image` refuses such data with its typed error later). Lets a
    caller bound the decoding work of a whole request before it starts."""
    if sniff_format(data) is None:
        return 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        return MAX_PIXELS + 1
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 0
    return int(width) * int(height)


def decode_image(data: bytes) -> np.ndarray:
    """Decode ``data`` to an ``H x W x 3`` BGR ``uint8`` array or raise a typed error."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UnsupportedFormat(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {MAX_BYTES}")
    if not data:
        raise ImageCorrupt("image is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedFormat("only JPEG, PNG and WebP images are accepted")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns (or raises) at ~89 MP; ours is stricter and
            # runs on the header below, so its warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(
                    f"image is {width}x{height} = {width * height} pixels; "
                    f"the limit is {MAX_PIXELS}"
                )
            if min(width, height) < MIN_SIDE:
                raise ImageTooSmall(
                    f"image is {width}x{height}; the short side must be at least {MIN_SIDE} px"
                )
            img.load()  # full decode: raises on truncated or corrupt data
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("image dimensions exceed the decoder's safety limit") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageCorrupt(f"{fmt.upper()} data could not be decoded") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, ::-1])  # RGB -> BGR, the order OpenCV models use


def encode_jpeg(image_bgr: np.ndarray, quality: int = 95) -> bytes:
    """Encode a BGR array as JPEG bytes (used by tests, tools and the liveness client)."""
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(image_bgr: np.ndarray) -> bytes:
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()
