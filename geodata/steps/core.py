"""Generic steps: validation, de-duplication, image presence, seeded sampling, H3 cells."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError
from ..geo import valid_coords
from ..registry import step
from ..schema import images_missing

__all__ = ["validate_coords", "dedupe", "require_images", "sample", "add_h3"]


def _need(df: pl.DataFrame, ctx: StepContext, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise BuildError(
            f"step '{ctx.name}' needs columns {missing}; the rows have {df.columns}"
        )


@step("validate_coords", kind="map")
def validate_coords(df: pl.DataFrame, ctx: StepContext, *, lat: str = "lat", lon: str = "lon") -> StepOutput:
    """Drop rows whose coordinates are null, NaN, out of range or exactly (0, 0).

    Counted as ``invalid_coordinates``.
    """
    out = StepOutput()
    _need(df, ctx, lat, lon)
    la = df[lat].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    lo = df[lon].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    ok = valid_coords(la, lo)
    out.drop("invalid_coordinates", int((~ok).sum()))
    return out.result(df.filter(pl.Series(ok)))


@step("dedupe", kind="frame")
def dedupe(df: pl.DataFrame, ctx: StepContext, *, column: str = "id") -> StepOutput:
    """Keep the first row of each ``column`` value; later ones count as ``duplicate_id``.

    Rows with a null id count as ``missing_id``.
    """
    out = StepOutput()
    _need(df, ctx, column)
    nulls = df[column].null_count()
    out.drop("missing_id", nulls)
    df = df.filter(pl.col(column).is_not_null())
    kept = df.filter(pl.col(column).is_first_distinct())
    out.drop("duplicate_id", df.height - kept.height)
    return out.result(kept)


@step("require_images", kind="map")
def require_images(df: pl.DataFrame, ctx: StepContext, *, column: str = "images") -> StepOutput:
    """Drop rows whose image was not found in the source (``missing_image``).

    A null ``images`` means missing; an empty list means a metadata-only build and is kept.
    """
    out = StepOutput()
    _need(df, ctx, column)
    missing = df.select(images_missing(pl.col(column))).to_series()
    out.drop("missing_image", int(missing.sum()))
    return out.result(df.filter(~missing))


@step("sample", kind="frame")
def sample(
    df: pl.DataFrame, ctx: StepContext, *, n: int | None = None, sort_by: str = "id",
    splits: list[str] | None = None,
) -> StepOutput:
    """Seeded uniform sample of ``n`` rows without replacement (all rows if ``n`` is null).

    Rows are first ordered by ``sort_by`` so the choice depends on the data, not on the
    order of the input files. If fewer rows than ``n`` remain, all are kept and the shortfall
    is noted in the stats and the card. With ``splits`` (e.g. ``[train]``) only rows whose
    ``split`` column is one of them are sampled, ``n`` of them; the other splits (an official
    test set) pass through whole.
    """
    out = StepOutput()
    if n is not None and n < 0:
        raise BuildError(f"step '{ctx.name}': n must be >= 0, got {n}")
    if sort_by in df.columns:
        df = df.sort(sort_by, maintain_order=True)
    if splits is not None:
        _need(df, ctx, "split")
        pool = df["split"].cast(pl.String).is_in(list(splits)).to_numpy()
    else:
        pool = np.ones(df.height, dtype=bool)
    candidates = np.flatnonzero(pool)
    if n is None or n >= candidates.size:
        if n is not None and n > candidates.size:
            what = f" of splits {', '.join(splits)}" if splits is not None else ""
            out.note(f"{ctx.name}.short", f"asked for {n} rows{what}, {candidates.size} available: kept all")
        return out.result(df)
    chosen = candidates[ctx.rng("sample").choice(candidates.size, size=n, replace=False)]
    keep = ~pool
    keep[chosen] = True
    out.drop("not_sampled", candidates.size - n)
    return out.result(df.filter(pl.Series(keep)))


@step("add_h3", kind="map")
def add_h3(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    resolution: int = 5,
    column: str = "h3",
    lat: str = "lat",
    lon: str = "lon",
) -> StepOutput:
    """Add the H3 cell (hex string) of each row at ``resolution`` (default 5, ~250 km²)."""
    import polars_h3

    if not 0 <= resolution <= 15:
        raise BuildError(f"step '{ctx.name}': resolution must be in 0..15, got {resolution}")
    _need(df, ctx, lat, lon)
    return StepOutput(df.with_columns(
        polars_h3.latlng_to_cell(lat, lon, resolution, return_dtype=pl.String).alias(column)
    ))
