"""``geodata check SOURCE``: what a source holds, and what a build would drop, before any build.

Runs the source's reader exactly as a build does (the image indexes are the same cached
ones), without decoding any image, and summarises the result: the detected layout (every
reader notes it as ``<reader>.image_layout``), metadata rows and columns, images found and
missing (three example ids), the splits and their sizes (a ``split`` column), and the rows
the standard steps would drop and why: the reader's own drops, then ``invalid_coordinates``,
``duplicate_id`` and ``missing_image`` in the order a build applies them. Everything is
vectorized; ``deep`` also reads and decode-checks every image exactly as the writer does
(``missing_image``, ``image_too_large``, ``undecodable_image``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .context import StepContext, StepOutput
from .engine.roots import locate_root
from .errors import ChoiceError, SourceError
from .geo import valid_coords
from .schema import images_missing

__all__ = ["check_source", "format_check"]

_WHY = {
    "invalid_coordinates": "latitude/longitude null, NaN, out of range or exactly (0, 0)",
    "duplicate_id": "the id occurs again after its first row",
    "missing_id": "no id",
    "missing_image": "no image file or record for the id",
    "bad_shard_record": "an unreadable stretch of a shard or archive (records lost)",
    "eval_overlap": "a benchmark test photo (same photo id or identical image)",
    "image_too_large": "more pixels than the default max_image_pixels",
    "undecodable_image": "the image does not decode",
}


def _root(info: Any, root: Path | None) -> tuple[Path, str]:
    """The root a build would use (:func:`geodata.engine.roots.locate_root`), with where it came from."""
    where, how, ready = locate_root(info, root)
    if not ready:
        raise SourceError(f"check: source '{info.name}': pass --root DIR or set {info.env} (or run `geodata sample-data`)")
    return where, "--root" if how == "root" else how


def check_source(
    name: str, root: Path | None = None, *, deep: bool = False, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Read source ``name`` and report what it holds and what a build would drop.

    Parameters
    ----------
    name
        A registered source (``geodata catalog`` lists them).
    root
        Its root folder (default: ``$<NAME>_ROOT``, else the embedded sample if written).
    deep
        Also read and decode every image.
    params
        Reader parameters (``{"images": "folder"}``), validated like a spec's.
    """
    from .registry import get_source, validate_params

    info = get_source(name)
    where, how = _root(info, root)
    kwargs = validate_params(info.params, dict(params or {}), f"check {name}")
    try:
        res = info.fn(StepContext(name=f"read:{name}"), root=where, **kwargs)
    except ChoiceError as exc:  # the root holds variants: report each, as a build would ask to choose
        if exc.param in (params or {}):
            raise
        reps = {c: check_source(name, root, deep=deep, params={**(params or {}), exc.param: c}) for c in exc.choices}
        rep = dict(reps[exc.choices[0]])
        rep["choices"] = {
            "param": exc.param,
            "why": str(exc),
            "options": {c: {"rows": r["rows"], "splits": r.get("splits", {}), "rows_after_drops": r["rows_after_drops"]}
                        for c, r in reps.items()},
            "shown": exc.choices[0],
        }
        return rep
    res = res if isinstance(res, StepOutput) else StepOutput(res)
    df = res.rows
    rep: dict[str, Any] = {"source": name, "root": str(where), "root_from": how}
    rep["layout"] = {k: v for k, v in res.notes.items() if k.endswith("image_layout")}
    rep["rows"] = df.height
    rep["columns"] = {c: str(t) for c, t in df.schema.items()}
    if "split" in df.columns:
        vc = df.group_by("split").len().sort("split")
        rep["splits"] = dict(zip(vc["split"].cast(pl.String).to_list(), vc["len"].to_list()))
    drops: dict[str, int] = dict(res.drops)
    idc = "id" if "id" in df.columns else None
    rest = df
    if "lat" in df.columns and "lon" in df.columns:
        la = rest["lat"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
        lo = rest["lon"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
        ok = valid_coords(la, lo)
        drops["invalid_coordinates"] = int((~ok).sum())
        rest = rest.filter(pl.Series(ok))
    if idc:
        nulls = rest[idc].null_count()
        drops["missing_id"] = nulls
        rest = rest.filter(pl.col(idc).is_not_null())
        first = rest.filter(pl.col(idc).is_first_distinct())
        drops["duplicate_id"] = rest.height - first.height
        rest = first
    if "images" in df.columns:
        col = df["images"]
        missing_all = df.select(images_missing(pl.col("images"))).to_series()
        empty = (col.list.len().fill_null(1) == 0) & ~missing_all
        ex = df.filter(missing_all).head(3)
        rep["images"] = {
            "rows_with_images": int((~missing_all & ~empty).sum()),
            "rows_missing_images": int(missing_all.sum()),
            "rows_without_images": int(empty.sum()),
            "image_refs": int(col.list.len().fill_null(0).sum()),
            "missing_examples": ex[idc].cast(pl.String).to_list() if idc else [str(i) for i in range(ex.height)],
        }
        miss = rest.select(images_missing(pl.col("images"))).to_series()
        drops["missing_image"] = int(miss.sum())
        rest = rest.filter(~miss)
        if deep:  # the writer's own read + decode check, so the reasons are the build's
            from .spec import Spec
            from .dataset.writer import embed_images

            _, why = embed_images(rest["images"].to_list(), True, Spec.model_fields["max_image_pixels"].default)
            for reason in ("missing_image", "image_too_large", "undecodable_image"):
                drops[reason] = drops.get(reason, 0) + sum(w == reason for w in why)
            rest = rest.filter(pl.Series([w is None for w in why], dtype=pl.Boolean))
    rep["drops"] = {k: v for k, v in drops.items() if v}
    rep["rows_after_drops"] = rest.height
    rep["deep"] = deep
    rep["notes"] = {k: v for k, v in res.notes.items() if not k.endswith("image_layout")}
    return rep


def format_check(rep: dict[str, Any]) -> str:
    """The report of :func:`check_source` as plain text."""
    cols = list(rep["columns"])
    lines = [f"source   {rep['source']} at {rep['root']} (from {rep['root_from']})"]
    ch = rep.get("choices")
    if ch:
        lines.append(f"choose   {ch['param']}: this root offers {len(ch['options'])}; a build asks you to set one "
                     f"({ch['param']}: VALUE in the spec's {rep['source']} source)")
        for c, o in ch["options"].items():
            sp = ", ".join(f"{k} {v}" for k, v in o["splits"].items())
            lines.append(f"  {ch['param']}={c:<18} {o['rows']:>9} rows" + (f" ({sp})" if sp else "")
                         + f", {o['rows_after_drops']} left after drops")
        lines.append(f"below: {ch['param']}={ch['shown']} (--param {ch['param']}=VALUE shows another)")
    lines += [
        "layout   " + ("; ".join(f"{v}" for v in rep["layout"].values()) or "(the reader notes none)"),
        f"rows     {rep['rows']} metadata rows, {len(cols)} columns: {', '.join(cols)}",
    ]
    im = rep.get("images")
    if im:
        text = f"images   {im['rows_with_images']} rows with images found, {im['rows_missing_images']} missing"
        if im["missing_examples"]:
            text += " (e.g. " + ", ".join(repr(x) for x in im["missing_examples"]) + ")"
        if im["rows_without_images"]:
            text += f", {im['rows_without_images']} metadata-only"
        lines.append(text)
    if rep.get("splits"):
        lines.append("splits   " + ", ".join(f"{k} {v}" for k, v in rep["splits"].items()))
    if rep["drops"]:
        lines.append("a build would drop" + ("" if rep["deep"] else " (images not decoded; --deep decodes)") + ":")
        for k, v in rep["drops"].items():
            lines.append(f"  {k:<20} {v:>9}  {_WHY.get(k, '')}".rstrip())
    else:
        lines.append("a build would drop nothing" + ("" if rep["deep"] else " (images not decoded; --deep decodes)"))
    lines.append(f"rows left {rep['rows_after_drops']}")
    for k, v in rep["notes"].items():
        lines.append(f"note     {k}: {v}")
    return "\n".join(lines)
