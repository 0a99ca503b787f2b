"""Public-domain demo portraits, produced at run time from installed packages.

The demo and the browser tests need faces we may redistribute; LFW (``../shared``) is for
tests and benchmarks only and must never be shipped or shown by the demo. Two portraits
are available on every install without a download and without committing image files:

* ``astronaut``: Eileen Collins, NASA portrait, from :func:`skimage.data.astronaut`
  (scikit-image is a project dependency).
* ``grace_hopper``: Rear Admiral Grace Hopper, US Navy photograph, from matplotlib's
  ``mpl-data/sample_data/grace_hopper.jpg``.

They are two different people (cosine of their face-engine embeddings ~0.16, far below
the ``far_1e-3`` threshold) and both pass detection and the quality gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from face_engine.image_io import encode_png


class UnknownPortrait(ValueError):
    """The requested demo portrait does not exist."""


@dataclass(frozen=True)
class PortraitInfo:
    name: str
    subject: str
    source: str
    licence: str


PORTRAITS: dict[str, PortraitInfo] = {
    "astronaut": PortraitInfo(
        name="astronaut",
        subject="Eileen Collins, NASA astronaut",
        source="NASA Great Images database, shipped as skimage.data.astronaut() "
               "(scikit-image)",
        licence="Public domain (work of the US federal government, NASA); no known "
                "copyright restrictions",
    ),
    "grace_hopper": PortraitInfo(
        name="grace_hopper",
        subject="Rear Admiral Grace M. Hopper, US Navy",
        source="US Navy photograph, shipped as matplotlib mpl-data/sample_data/"
               "grace_hopper.jpg",
        licence="Public domain (work of the US federal government, US Navy)",
    ),
}


def portrait_names() -> tuple[str, ...]:
    return tuple(PORTRAITS)


def portrait_info(name: str) -> PortraitInfo:
    """Provenance and licence of a demo portrait."""
    try:
        return PORTRAITS[name]
    except KeyError:
        raise UnknownPortrait(
            f"unknown demo portrait {name!r}; choose one of {', '.join(PORTRAITS)}"
        ) from None


def _grace_hopper_path() -> Path:
    import matplotlib  # imported lazily: only this portrait needs it

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"matplotlib's sample image is missing: {path}")
    return path


@cache
def demo_portrait(name: str) -> bytes:
    """The named portrait as image bytes (PNG for ``astronaut``, the original JPEG for
    ``grace_hopper``), ready for :meth:`FaceEngine.analyze`."""
    portrait_info(name)  # typed error for an unknown name
    if name == "astronaut":
        from skimage import data  # lazily: scikit-image is heavy to import

        rgb = np.asarray(data.astronaut(), dtype=np.uint8)
        return encode_png(np.ascontiguousarray(rgb[:, :, ::-1]))
    return _grace_hopper_path().read_bytes()
