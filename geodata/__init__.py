"""geodata: declarative pipelines for geospatial-reasoning VLM post-training datasets.

The public API is what a user or a plugin needs:

>>> from geodata import build, load_spec, Dataset  # build and read a dataset  # doctest: +SKIP
>>> from geodata import step, source, reward, StepContext, StepOutput  # write a plugin  # doctest: +SKIP
>>> from geodata import haversine, reverse_geocode  # doctest: +SKIP

Every name but ``haversine`` / ``valid_coords`` is imported on first use, so ``import geodata``
stays cheap and never imports torch or ray.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .geo import haversine, valid_coords  # noqa: E402

# public name -> the module that defines it (imported on first use)
_LAZY = {
    "build": "geodata.engine",
    "load_spec": "geodata.spec",
    "Dataset": "geodata.dataset",
    "step": "geodata.registry",
    "source": "geodata.registry",
    "reward": "geodata.registry",
    "StepContext": "geodata.context",
    "StepOutput": "geodata.context",
    "reverse_geocode": "geodata.geocode",
}

__all__ = ["__version__", "haversine", "valid_coords", *_LAZY]


def __getattr__(name: str):  # lazy: importing geodata stays cheap
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geodata' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
