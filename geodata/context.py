"""What a step or source reader sees (:class:`StepContext`) and what it returns (:class:`StepOutput`).

The data flow is explicit: a step gets the rows, a read-only context and the tables its
spec names as ``inputs``; it returns a :class:`StepOutput` (rows, counted drops, notes,
extra tables). Nothing is shared or written behind the engine's back.

>>> ctx = StepContext(seed=1, name="sample")
>>> out = StepOutput()
>>> out.drop("cell_cap", 3); out.drop("nothing", 0); out.note("sample.short", "kept all")
>>> res = out.result(pl.DataFrame({"id": ["a"]}))
>>> res.rows.height, res.drops, res.notes
(1, {'cell_cap': 3}, {'sample.short': 'kept all'})
"""

from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

__all__ = ["StepContext", "StepOutput"]

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


@dataclass(frozen=True)
class StepContext:
    """The read-only context of one step or source reader.

    Attributes
    ----------
    seed
        The spec's ``seed``; use :meth:`rng` for per-step generators.
    name
        The step key (``sample``) or ``read:<source>`` for a reader; used in messages.
    limits
        Read-only thresholds of the spec (e.g. ``max_image_pixels``).
    spec_path
        The YAML file being built (for messages).
    """

    seed: int = 0
    name: str = ""
    limits: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    spec_path: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.limits, types.MappingProxyType):
            object.__setattr__(self, "limits", types.MappingProxyType(dict(self.limits)))

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded from the spec seed, this step's name and ``salt``."""
        digest = hashlib.sha256(f"{self.seed}/{self.name}/{salt}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass
class StepOutput:
    """What a step or reader produced; built locally and returned.

    Attributes
    ----------
    rows
        The rows that flow on (``None`` until :meth:`result` sets them).
    drops
        Rows dropped, per reason.
    notes
        Facts for the build stats and the dataset card (``"sample.short": ...``).
    tables
        Further configs of the output dataset (e.g. ``hotspots``), written after the rows.
    provides
        Named tables later steps may take as ``inputs`` (``<step>`` or ``<step>.<name>``).
    """

    rows: pl.DataFrame | None = None
    drops: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    provides: dict[str, pl.DataFrame] = field(default_factory=dict)

    def drop(self, reason: str, n: int) -> None:
        """Count ``n`` rows dropped for ``reason`` (``n <= 0`` is ignored)."""
        if n <= 0:
            return
        self.drops[reason] = self.drops.get(reason, 0) + int(n)

    def note(self, key: str, value: Any) -> None:
        """Attach a fact to the build stats and the dataset card."""
        self.notes[key] = value

    def emit(self, config: str, table: pl.DataFrame) -> None:
        """Write ``table`` as a further config ``config`` of the output dataset."""
        self.tables[config] = table

    def provide(self, name: str, table: pl.DataFrame) -> None:
        """Offer ``table`` to later steps as input ``<this step>.<name>``."""
        self.provides[name] = table

    def merge(self, other: "StepOutput") -> pl.DataFrame | None:
        """Add ``other``'s drops, notes and tables to this output; return its rows."""
        for k, v in other.drops.items():
            self.drop(k, v)
        self.notes.update(other.notes)
        self.tables.update(other.tables)
        self.provides.update(other.provides)
        return other.rows

    def result(self, rows: pl.DataFrame) -> "StepOutput":
        """Set the rows and return this output (``return out.result(df)``)."""
        self.rows = rows
        return self
