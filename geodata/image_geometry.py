"""Image geometry that readers and steps share: an image's size from its header, and the window
names of the DOTA split tools (a tiled image's name says where the window sits).

Readers (:mod:`geodata.sources`) and steps (:mod:`geodata.steps`) both import this module; it
imports neither (only :mod:`geodata.images`, to read an image reference).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import SourceError
from .images import read_ref, strict_pil

__all__ = ["image_size", "WINDOW_RE"]

#: A window file of the split tools: ``P0001__1024__824___0`` (devkit: ``P0001__1__824___0``).
WINDOW_RE = re.compile(r"^(?P<orig>.+)__(?P<scale>\d+(?:\.\d+)?)__(?P<left>\d+)___(?P<up>\d+)$")


def image_size(path: Path | str) -> tuple[int, int]:
    """``(width, height)`` of an image from its header (PIL, no full decode).

    ``path`` may also be an image reference (``tar://``, ``deflate://``, ``hfarrow://`` …, see
    :mod:`geodata.images`): its bytes are read first. Pillow's decompression-bomb guard is
    lifted for the call (:class:`geodata.images.strict_pil`, safe across threads): only the
    header is read, and DOTA-v2 images (about 20000×20000 px) would otherwise abort the build.
    """
    import io

    from PIL import Image

    try:
        if isinstance(path, str) and "://" in path:
            src: Path | str | io.BytesIO = io.BytesIO(read_ref(path))
        else:
            src = path
        with strict_pil(), Image.open(src) as im:
            return int(im.width), int(im.height)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise SourceError(f"{path}: cannot read image size ({type(exc).__name__})") from None
