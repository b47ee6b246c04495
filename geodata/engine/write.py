"""The write stage of a build: rows and emitted tables into the spec's output format, then the
manifest, the card (a current report carried over) and the build statistics, all in the
temporary folder that the build swaps in at the end.

The output format is looked up by name (``output.format``, default ``parquet``) in the
registry: a new format is one module in ``geodata/formats/`` and needs no edit here.
"""

from __future__ import annotations

import json
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from .. import __version__
from .._cache import disk_full_error, files_digest, is_disk_full, ref_file, stat_files
from ..dataset import BuildStats, Dataset, FileEntry, Manifest, SplitEntry
from ..dataset import ownership as own
from ..dataset.card import build_card
from ..dataset.layout import IMAGES_SIDECAR, MANIFEST, STATS
from ..errors import BuildError
from ..registry import get_format
from ..schema import CORE_COLUMNS, check_core_columns
from ..spec import Spec
from .flow import Flow, StepStat, _check_losses
from .plan import Plan

__all__ = ["select_rows", "write_dataset"]

_VERSIONED = ("datasets", "polars", "pyarrow", "duckdb", "numpy", "scipy", "h3", "reverse_geocoder", "pycountry")


def select_rows(df: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """The rows after the last step, checked for the core columns and cut to the output's columns."""
    check_core_columns(df.columns, f"{spec.path}: rows after the last step")
    return _select_columns(df, spec)


def write_dataset(plan: Plan, flow: Flow, df: pl.DataFrame, stats: list[StepStat], tmp: Path,
                  ui: Any, runner: Any) -> Manifest:
    """Write everything a dataset folder holds into ``tmp``; return its manifest.

    ``stats`` (the readers' and steps') gains the write stage's own line. A full disk is one
    :class:`~geodata._cache.DiskFullError` naming the dataset's folder (the build then removes
    ``tmp``, so the dataset at the path is left as it was and no partial file stays).
    """
    try:
        return _write_files(plan, flow, df, stats, tmp, ui, runner)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        written = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        raise disk_full_error(
            plan.out, f"the new dataset did not fit ({written:,} bytes written when the disk filled; "
            "the dataset at this path is left as it was)", exc,
            "free space there or build into a folder on a larger disk with --out") from None


def _write_files(plan: Plan, flow: Flow, df: pl.DataFrame, stats: list[StepStat], tmp: Path,
                 ui: Any, runner: Any) -> Manifest:
    spec = plan.spec
    image_files = _embedded_files([df, *flow.emitted.values()])
    image_stats = stat_files(image_files)
    ui.stage("writing shards")
    ui.start_rows(df.height + sum(t.height for t in flow.emitted.values()))
    written, configs, files, features = _write_rows(plan, flow, df, stats, tmp, ui, runner)
    all_drops: dict[str, int] = {}
    for s in stats:
        for k, v in s.drops.items():
            all_drops[k] = all_drops.get(k, 0) + v
    manifest = Manifest(
        written_by=own.MANIFEST_MARKER[1],
        name=spec.name,
        fingerprint=plan.fingerprint,
        spec_fingerprint=plan.spec_fingerprint,
        spec_file=_project_path(spec.path),
        inputs=plan.inputs,
        sample_sources=list(plan.sample_sources),
        images_digest=files_digest(image_stats) if image_files else None,
        images_files=len(image_files),
        geodata_version=__version__,
        versions=_versions(),
        default_config=sorted(configs)[0] if spec.output.config_by else spec.output.default_config,
        spec=spec.canonical(),
        limits=plan.limits,
        rows=written,
        configs=configs,
        files=files,
        # timing-free, so the manifest is as deterministic as the shards
        stats=BuildStats(
            steps=[{k: v for k, v in s.__dict__.items() if k != "seconds"} for s in stats],
            drops=all_drops,
            notes={k: _jsonable(v) for k, v in flow.notes.items()},
        ),
    )
    if image_files:
        image_stats.write_ipc(tmp / IMAGES_SIDECAR, compression="zstd")
    (tmp / MANIFEST).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    card = build_card(_card_view(manifest, plan.roots), features)
    kept = own.carry_report(plan.out, tmp, manifest.content_digest())  # a report of the same shards stays
    if kept is not None:
        card = card.with_section("report", kept)
    Dataset(tmp, manifest).write_card(card)
    timed = {**manifest.stats.model_dump(mode="json"), "steps": [s.__dict__ for s in stats]}  # with seconds
    (tmp / STATS).write_text(json.dumps(timed, indent=2) + "\n")
    return manifest


def _write_rows(plan: Plan, flow: Flow, df: pl.DataFrame, stats: list[StepStat], tmp: Path,
                ui: Any, runner: Any) -> tuple[int, dict, dict, dict]:
    """The rows' partitions, then the emitted tables (config ``<table>``, split ``train``)."""
    spec = plan.spec
    fmt = get_format(spec.output.format)
    configs: dict[str, dict[str, SplitEntry]] = {}
    files: dict[str, FileEntry] = {}
    features: dict[str, Any] = {}

    def write(rows: pl.DataFrame, prefix: str, config: str, split: str) -> Any:
        res = fmt.fn(rows, tmp, prefix, config=config, split=split, output=spec.output,
                     max_image_pixels=spec.max_image_pixels, on_rows=ui.advance, runner=runner)
        _record(res, configs, files, features)
        return res

    write_drops: dict[str, int] = {}
    write_examples: dict[str, list[str]] = {}
    t = time.perf_counter()
    rows_in = df.height
    for config, split, pdf in _partitions(df, spec):
        prefix = "data" if config == "default" and not spec.output.config_by else config
        res = write(pdf, prefix, config, split)
        for k, v in res.drops.items():
            write_drops[k] = write_drops.get(k, 0) + v
        for k, v in res.examples.items():
            write_examples[k] = (write_examples.get(k, []) + v)[:3]
    written = sum(s.num_rows for c in configs.values() for s in c.values())
    stats.append(StepStat("write", rows_in, written, time.perf_counter() - t, write_drops))
    _check_losses("write", rows_in, write_drops, spec, flow, plan.roots, spec.input_name, examples=write_examples)
    if written == 0:
        lost = ", ".join(f"{k}: {v}" for k, v in sorted(write_drops.items())) or "no rows reached the writer"
        raise BuildError(f"{spec.name}: the build wrote 0 rows ({lost}); a build needs at least one")
    for config, edf in sorted(flow.emitted.items()):
        if config in configs:
            raise BuildError(f"emitted table '{config}' clashes with a config of the rows")
        write(edf, config, config, "train")
    return written, configs, files, features


def _partitions(df: pl.DataFrame, spec: Spec) -> list[tuple[str, str, pl.DataFrame]]:
    o = spec.output
    for col in (o.config_by, o.split_by):
        if col and col not in df.columns:
            raise BuildError(f"output: column '{col}' is not in the rows ({df.columns})")
    configs = sorted(df[o.config_by].unique().to_list()) if o.config_by else [o.default_config]
    parts = []
    for config in configs:
        cdf = df.filter(pl.col(o.config_by) == config) if o.config_by else df
        splits = sorted(cdf[o.split_by].unique().to_list()) if o.split_by else [o.split]
        for split in splits:
            sdf = cdf.filter(pl.col(o.split_by) == split) if o.split_by else cdf
            if o.split_by:
                sdf = sdf.drop(o.split_by)
            parts.append((str(config), str(split), sdf))
    return parts


def _select_columns(df: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    keep = [c for c in CORE_COLUMNS]
    meta = spec.output.metadata_columns
    if meta is None:
        meta = [c for c in df.columns if c not in CORE_COLUMNS and not c.startswith("_")]
    missing = [c for c in meta if c not in df.columns]
    if missing:
        raise BuildError(f"output.metadata_columns: {missing} are not in the rows ({df.columns})")
    extra = [c for c in (spec.output.config_by, spec.output.split_by) if c and c not in keep + meta]
    return df.select(keep + list(meta) + extra)


def _embedded_files(frames: Iterable[pl.DataFrame]) -> list[str]:
    """Sorted unique files behind the image references of ``frames`` (shards for msgpack/tar)."""
    parts = [
        f.select(pl.col("images").explode().drop_nulls().alias("ref"))
        for f in frames if "images" in f.columns and f["images"].dtype == pl.List(pl.String)
    ]
    if not parts:
        return []
    refs = pl.concat(parts)
    return refs.select(ref_file(pl.col("ref")).alias("file")).unique()["file"].sort().to_list()


def _versions() -> dict[str, str]:
    out = {"geodata": __version__}
    for pkg in _VERSIONED:
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def _project_path(path: Path | None) -> str | None:
    """The spec file relative to its project (``pipelines/NAME.yaml``), never an absolute path."""
    if path is None:
        return None
    p = Path(path).resolve()
    if p.parent.name == "pipelines":
        return f"pipelines/{p.name}"
    if p.parent.name == "bench" and p.parent.parent.name == "pipelines":
        return f"pipelines/bench/{p.name}"
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.name


def _card_view(manifest: Manifest, roots: dict[str, Path] | None = None) -> Manifest:
    """The manifest as the card sees it: source roots in the notes written as ``<source>``.

    So the card is as deterministic as the shards, whichever folders the inputs live in.
    """
    subs: list[tuple[str, str]] = []
    for name, root in (roots or {}).items():
        for form in {str(root), str(Path(root).resolve()), str(Path(root).absolute())}:
            if form not in ("", "."):
                subs.append((form.rstrip("/"), f"<{name}>"))
    subs.sort(key=lambda t: -len(t[0]))

    def plain(v: Any) -> Any:
        if isinstance(v, str):
            for a, b in subs:
                v = v.replace(a, b)
            return v
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    stats = manifest.stats.model_copy(update={"notes": plain(manifest.stats.notes)})
    return manifest.model_copy(update={"stats": stats})


def _record(res: Any, configs: dict, files: dict, features: dict) -> None:
    configs.setdefault(res.config, {})[res.split] = SplitEntry(num_rows=res.rows, files=[f.path for f in res.files])
    for f in res.files:
        files[f.path] = FileEntry(sha256=f.sha256, bytes=f.bytes, rows=f.rows)
    features[res.config] = res.features


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)
