"""The build context handed to every step and source reader."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .errors import BuildError

__all__ = ["Context"]

log = logging.getLogger("geodata")


@dataclass
class Context:
    """State shared by the steps of one build.

    Attributes
    ----------
    seed
        The spec's ``seed``; use :meth:`rng` for per-step generators.
    spec_path
        The YAML file being built (for messages).
    tables
        Every source read for this build, by the name the spec gives it.
    """

    seed: int = 0
    spec_path: Path | None = None
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    extra_outputs: dict[str, pl.DataFrame] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    current_step: str = ""
    #: the spec's thresholds (``max_drop_fraction``, ``min_prediction_coverage``, ``max_image_pixels``)
    limits: dict[str, Any] = field(default_factory=dict)
    _drops: dict[str, dict[str, int]] = field(default_factory=dict)

    # -- randomness ---------------------------------------------------------------------
    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded from the spec seed, the current step and ``salt``."""
        digest = hashlib.sha256(f"{self.seed}/{self.current_step}/{salt}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    # -- accounting ---------------------------------------------------------------------
    def drop(self, reason: str, n: int) -> None:
        """Record that the current step dropped ``n`` rows for ``reason``."""
        if n <= 0:
            return
        per = self._drops.setdefault(self.current_step, {})
        per[reason] = per.get(reason, 0) + int(n)
        log.info("%s: dropped %d rows (%s)", self.current_step, n, reason)

    def drops(self, step: str | None = None) -> dict[str, int]:
        """Drop counts per reason, for one step or summed over the build."""
        if step is not None:
            return dict(self._drops.get(step, {}))
        total: dict[str, int] = {}
        for per in self._drops.values():
            for k, v in per.items():
                total[k] = total.get(k, 0) + v
        return total

    def note(self, key: str, value: Any) -> None:
        """Attach a fact to the build stats and the dataset card (``"sample.short": ...``)."""
        self.notes[key] = value

    # -- tables -------------------------------------------------------------------------
    def table(self, name: str) -> pl.DataFrame:
        """A source table by name; a clear error lists the names the spec defines."""
        if name not in self.tables:
            raise BuildError(
                f"step '{self.current_step}' needs source '{name}', but the spec defines "
                f"{sorted(self.tables)}"
            )
        return self.tables[name]

    def emit(self, config: str, df: pl.DataFrame) -> None:
        """Write ``df`` as a further config ``config`` of the output dataset (e.g. hotspots)."""
        self.extra_outputs[config] = df
