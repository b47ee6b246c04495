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
import numbers
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from .errors import BuildError

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
    part
        The chunk of the rows a ``map`` step sees (0 for the first chunk, and for a frame
        that is one chunk); see ``output.map_chunk_rows``.
    progress
        The build's live display when one is shown (``add_counter(label, total)`` /
        ``update_counter(task, advance=…, description=…)``, see :mod:`geodata._progress`), else
        None. It only shows; it never changes what a step returns, is not compared, and stays
        behind when the context travels to a worker.

    A context pickles (it travels to the runner's workers with its chunk, without the display):

    >>> import pickle
    >>> ctx = StepContext(seed=1, name="scaffold", limits={"max_image_pixels": 10}, part=2, progress=object())
    >>> back = pickle.loads(pickle.dumps(ctx))
    >>> back == ctx, back.progress is None
    (True, True)
    """

    seed: int = 0
    name: str = ""
    limits: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    spec_path: Path | None = None
    part: int = 0
    progress: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.limits, types.MappingProxyType):
            object.__setattr__(self, "limits", types.MappingProxyType(dict(self.limits)))

    def __reduce__(self) -> tuple[Any, ...]:
        # a MappingProxyType does not pickle: ship the plain fields, rebuild on load (no live display)
        return (StepContext, (self.seed, self.name, dict(self.limits), self.spec_path, self.part))

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded from the spec seed, this step's name, ``salt`` and the chunk.

        The chunk (:attr:`part`) is mixed in only when it is > 0, so the first chunk, and a
        frame that is one chunk, draw exactly what an unchunked step draws.

        >>> draw = lambda ctx: int(ctx.rng("t").integers(0, 10**9))
        >>> one = draw(StepContext(7, "s"))
        >>> one == draw(StepContext(7, "s", part=0)), one == draw(StepContext(7, "s", part=1))
        (True, False)
        """
        key = f"{self.seed}/{self.name}/{salt}" + (f"/part={self.part}" if self.part > 0 else "")
        digest = hashlib.sha256(key.encode()).digest()
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

    @classmethod
    def combine(cls, parts: "list[StepOutput]", step: str = "") -> "StepOutput":
        """The output of a ``map`` step run in chunks: ``parts`` in chunk order, merged by one rule.

        * rows are concatenated in chunk order;
        * drops add up, per reason;
        * an ``int`` note (not a bool) is a count and adds up;
        * any other note is a fact: every chunk that sets it must give the same value, else
          :class:`~geodata.errors.BuildError` naming ``step`` and the note key;
        * ``tables`` / ``provides`` are an error: a map step is row-local, and a step that
          makes further tables must be a ``frame`` step.

        Keys keep the order in which they first appear.

        Examples
        --------
        >>> a = StepOutput(pl.DataFrame({"id": ["a"]}), {"bad": 1}, {"s.n": 2, "s.kind": "x"})
        >>> b = StepOutput(pl.DataFrame({"id": ["b"]}), {"bad": 2}, {"s.n": 3, "s.kind": "x"})
        >>> out = StepOutput.combine([a, b], "s")
        >>> out.rows["id"].to_list(), out.drops, out.notes
        (['a', 'b'], {'bad': 3}, {'s.n': 5, 's.kind': 'x'})
        >>> StepOutput.combine([a, StepOutput(b.rows, notes={"s.kind": "y"})], "s")
        Traceback (most recent call last):
        ...
        geodata.errors.BuildError: step 's': note 's.kind' differs between chunks ('x' in chunk 0, 'y' in chunk 1); a map step's non-count notes must be facts of the whole table (make it a frame step, or note a count)
        """
        where = f"step '{step}'" if step else "a map step"
        out = cls()
        first: dict[str, int] = {}
        for i, part in enumerate(parts):
            extra = sorted(part.tables) + sorted(part.provides)
            if extra:
                raise BuildError(
                    f"{where}: a map step may not emit or provide tables (got {', '.join(extra)} in chunk {i}); "
                    "a step that makes further tables must be kind='frame'"
                )
            for k, v in part.drops.items():
                out.drops[k] = out.drops.get(k, 0) + v
            for k, v in part.notes.items():
                if k not in out.notes:
                    out.notes[k], first[k] = v, i
                elif _is_count(v) and _is_count(out.notes[k]):
                    out.notes[k] += v
                elif not _same(out.notes[k], v):
                    raise BuildError(
                        f"{where}: note '{k}' differs between chunks ({out.notes[k]!r} in chunk {first[k]}, "
                        f"{v!r} in chunk {i}); a map step's non-count notes must be facts of the whole table "
                        "(make it a frame step, or note a count)"
                    )
        frames = [p.rows for p in parts if p.rows is not None]
        if len(frames) > 1:
            out.rows = pl.concat(frames, how="vertical_relaxed", rechunk=True)
        else:  # one chunk: its rows as they are
            out.rows = frames[0] if frames else None
        return out


def _is_count(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays: compare their text
        return repr(a) == repr(b)
