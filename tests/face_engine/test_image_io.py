from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from face_engine.errors import ImageCorrupt, ImageTooLarge, ImageTooSmall, UnsupportedFormat
from face_engine.image_io import MAX_BYTES, decode_image, encode_jpeg, sniff_format


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, followed by a tiny (wrong) IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def _image(fmt: str, size: tuple[int, int] = (120, 100)) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,name", [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_accepted_formats_decode_to_bgr(fmt: str, name: str) -> None:
    data = _image(fmt)
    assert sniff_format(data) == name
    img = decode_image(data)
    assert img.shape == (100, 120, 3)
    assert img.dtype == np.uint8


def test_channel_order_is_bgr() -> None:
    arr = np.zeros((80, 80, 3), dtype=np.uint8)
    arr[:, :, 0] = 255  # pure red in RGB
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    img = decode_image(buf.getvalue())
    assert img[0, 0].tolist() == [0, 0, 255]


def test_gif_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormat) as exc:
        decode_image(_image("GIF"))
    assert exc.value.code == "unsupported_format"


def test_random_bytes_are_unsupported() -> None:
    with pytest.raises(UnsupportedFormat):
        decode_image(b"hello world, not an image at all" * 10)


def test_corrupt_jpeg_body() -> None:
    data = bytearray(_image("JPEG"))
    data[20:] = b"\x00" * (len(data) - 20)
    with pytest.raises(ImageCorrupt) as exc:
        decode_image(bytes(data))
    assert exc.value.code == "image_corrupt"


def test_truncated_jpeg() -> None:
    data = encode_jpeg(np.full((200, 200, 3), 128, dtype=np.uint8))
    with pytest.raises(ImageCorrupt):
        decode_image(data[: len(data) // 2])


def test_empty_input() -> None:
    with pytest.raises(ImageCorrupt):
        decode_image(b"")


def test_oversized_header_refused_before_decoding() -> None:
    # 40,000 x 40,000 claimed in ~100 bytes: refused from the header alone.
    with pytest.raises(ImageTooLarge) as exc:
        decode_image(_png_with_header(40_000, 40_000))
    assert exc.value.code == "image_too_large"
    with pytest.raises(ImageTooLarge):
        decode_image(_png_with_header(5_000, 4_100))  # 20.5 MP, just over the limit


def test_too_many_bytes() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(b"\xff\xd8\xff" + b"\x00" * MAX_BYTES)


def test_tiny_image() -> None:
    with pytest.raises(ImageTooSmall) as exc:
        decode_image(_image("PNG", (200, 40)))
    assert exc.value.code == "image_too_small"
