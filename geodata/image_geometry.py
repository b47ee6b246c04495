"""Image geometry that readers and steps share: an image's size from its header, and the window
names of the DOTA split tools (a tiled image's name says where the window sits).

Readers (:mod:`geodata.sources`) and steps (:mod:`geodata.steps`) both import this module; it
imports neither.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import SourceError
from .images import strict_pil

__all__ = ["image_size", "WINDOW_RE"]

#: A window file of the split tools: ``P0001__1024__824___0`` (devkit: ``P0001__1__824___0``).
WINDOW_RE = re.compile(r"^(?P<orig>.+)__(?P<scale>\d+(?:\.\d+)?)__(?P<left>\d+)___(?P<up>\d+)$")


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header (PIL, no full decode).

    Pillow's decompression-bomb guard is lifted for the call (:class:`geodata.images.strict_pil`,
    safe across threads): only the header is read, and
    DOTA-v2 images (about 20000×20000 px) would otherwise abort the build.
    """
    from PIL import Image

    try:
        with strict_pil(), Image.open(path) as im:
            return int(im.width), int(im.height)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise SourceError(f"{path}: cannot read image size ({type(exc).__name__})") from None
