"""YFCC4K as a benchmark to ask a model (Müller-Budack et al. 2018): the truth CSV and its images.

On disk (``$YFCC4K_ROOT``: the folder or its truth CSV, see ``catalogs/yfcc4k.yaml``)::

    yfcc4k_places365.csv       IMG_ID,LAT,LON (plus Places365 columns in GeoEstimation's copy)
    images/<IMG_ID>            <photo id>.jpg

Read like IM2GPS3K (:func:`geodata.sources.im2gps3k.read_geo_benchmark`): images required.
"""

from __future__ import annotations

from pathlib import Path

from ..context import StepContext, StepOutput
from ..registry import source
from .im2gps3k import benchmark_files, read_geo_benchmark, write_benchmark_sample

__all__ = ["read_yfcc4k"]


@source("yfcc4k", env="YFCC4K_ROOT", sample=lambda d: write_benchmark_sample(d, "yfcc4k"),
        fingerprint=lambda root, **_: benchmark_files(root))
def read_yfcc4k(ctx: StepContext, *, root: Path) -> StepOutput:
    """YFCC4K's 4,536 test photos with their truth (``yfcc4k_places365.csv`` + ``images/``)."""
    return read_geo_benchmark(ctx, root, "yfcc4k", "YFCC4K_ROOT")
