"""geodata: declarative pipelines for geospatial-reasoning VLM post-training datasets.

The public API is small:

>>> from geodata import build, load_spec, haversine, reverse_geocode  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .geo import haversine, valid_coords  # noqa: E402

__all__ = ["__version__", "build", "load_spec", "haversine", "valid_coords", "reverse_geocode"]


def __getattr__(name: str):  # lazy: importing geodata stays cheap
    if name == "build":
        from .engine import build

        return build
    if name == "load_spec":
        from .spec import load_spec

        return load_spec
    if name == "reverse_geocode":
        from .geocode import reverse_geocode

        return reverse_geocode
    raise AttributeError(f"module 'geodata' has no attribute '{name}'")
