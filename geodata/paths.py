"""Every path geodata defaults to, and every environment variable that moves one.

======================  ===========================================  ===================================
variable                what                                         default
======================  ===========================================  ===================================
``GEODATA_DATASETS``    built datasets (``<name>/``)                 ``./datasets``
``GEODATA_DATA``        embedded samples (``samples/<reader>/``)     ``./data``
``GEODATA_CACHE``       image indexes, tiles, the inference cache    ``~/.cache/geodata``
``GEODATA_PIPELINES``   a pipeline folder searched first             ``./pipelines``, the repository's
``GEODATA_CATALOGS``    a catalog folder searched first              ``./catalogs``, the repository's
``GEODATA_CHAINS``      a reproduce-chain folder searched first      ``./pipelines/chains``, the repo's
``GEODATA_PUBLISH_DIR`` assembled publish folders (``<name>/``)      ``./build/hub``
``GEODATA_RUNS``        ``geodata predict``'s default outputs        ``./runs``
                        (``*/predictions.parquet``) that builds check
``GEODATA_DEBUG``       tracebacks instead of one-line errors        off
``<SOURCE>_ROOT``       a source's root, named by its reader         its embedded sample
======================  ===========================================  ===================================

Nothing else in geodata reads an environment variable for a path. The other variables read
are not paths: a spec's own ``${VAR}`` (:func:`geodata.spec.interpolate`), an endpoint's API
key named by the spec (:mod:`geodata.inference`) and Ray's ``RAY_ADDRESS`` (:mod:`geodata.runners.ray`).

>>> import os; os.environ["GEODATA_PUBLISH_DIR"] = "/tmp/hub"
>>> publish_dir("mp16-rand-500k").as_posix()
'/tmp/hub/mp16-rand-500k'
>>> del os.environ["GEODATA_PUBLISH_DIR"]
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["datasets_dir", "data_dir", "cache_dir", "pipeline_dirs", "catalog_dirs", "chain_dirs", "publish_dir", "debug",
           "source_root", "runs_dir"]

#: the repository (or installed tree) holding the shipped pipelines/ and catalogs/
_REPO = Path(__file__).resolve().parent.parent


def datasets_dir() -> Path:
    """Where built datasets live: ``$GEODATA_DATASETS`` or ``./datasets``."""
    return Path(os.environ.get("GEODATA_DATASETS") or "datasets")


def data_dir() -> Path:
    """Where the embedded samples are written: ``$GEODATA_DATA`` or ``./data``."""
    return Path(os.environ.get("GEODATA_DATA", "data"))


def cache_dir() -> Path:
    """``$GEODATA_CACHE`` or ``~/.cache/geodata``."""
    return Path(os.environ.get("GEODATA_CACHE", Path.home() / ".cache" / "geodata"))


def _search(var: str, folder: str) -> list[Path]:
    dirs = [Path(os.environ[var])] if os.environ.get(var) else []
    dirs.append(Path.cwd() / folder)
    if _REPO / folder not in dirs:
        dirs.append(_REPO / folder)
    return dirs


def pipeline_dirs() -> list[Path]:
    """Where pipelines are looked up: $GEODATA_PIPELINES, ./pipelines, the repo's pipelines/."""
    return _search("GEODATA_PIPELINES", "pipelines")


def catalog_dirs() -> list[Path]:
    """Where source catalogs are looked up: $GEODATA_CATALOGS, ./catalogs, the repo's catalogs/."""
    return _search("GEODATA_CATALOGS", "catalogs")


def chain_dirs() -> list[Path]:
    """Where reproduce chains are looked up: $GEODATA_CHAINS, ./pipelines/chains, the repo's."""
    return _search("GEODATA_CHAINS", "pipelines/chains")


def publish_dir(name: str) -> Path:
    """``$GEODATA_PUBLISH_DIR/<name>``, else ``build/hub/<name>``."""
    return Path(os.environ.get("GEODATA_PUBLISH_DIR") or "build/hub") / name


def runs_dir() -> Path:
    """Where training and ``geodata predict`` runs write by default: ``$GEODATA_RUNS`` or ``./runs``."""
    return Path(os.environ.get("GEODATA_RUNS") or "runs")


def debug() -> bool:
    """``GEODATA_DEBUG`` set (and not ``0``): commands show tracebacks."""
    return os.environ.get("GEODATA_DEBUG", "") not in ("", "0")


def source_root(env: str) -> Path | None:
    """A source's root from its environment variable (``MP16_ROOT``), or None when unset."""
    return Path(os.environ[env]).expanduser() if os.environ.get(env) else None
