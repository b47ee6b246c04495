"""Run a pipeline spec: read sources, apply steps, write the dataset atomically.

A build is

* **fingerprinted**: the resolved spec, the inputs' file stats and the geodata version give
  one sha256; if ``datasets/<name>/manifest.json`` holds the same one, nothing is done;
* **atomic**: everything is written to a hidden sibling folder first and swapped in by
  rename at the end, so a killed build never leaves a half-written dataset in place;
* **deterministic**: the same spec, inputs and seed give byte-identical shards.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from . import __version__
from . import _ownership as own
from ._cache import files_digest, ref_file, stat_digest, stat_files
from .card import build_card
from .context import StepContext, StepOutput
from .dataset import BuildStats, Dataset, FileEntry, Manifest, SplitEntry, datasets_dir
from .errors import BuildError, SourceError
from .registry import SourceInfo, get_source, get_step
from .runners import InProcess, get_runner, run_map_chunk
from .schema import CORE_COLUMNS, check_core_columns, images_missing
from .spec import SourceSpec, Spec, load_spec
from .writer import write_partition

__all__ = [
    "build", "BuildResult", "datasets_dir", "data_dir", "resolve_root", "run_steps", "read_sources", "Flow",
    "DATA_LOSS_REASONS", "loss_reason", "IMAGES_SIDECAR",
]

log = logging.getLogger("geodata")

#: drop reasons that mean input data was lost, as opposed to an intended selection (sampling,
#: de-duplication, hotspot exclusion ...). A reader or step that drops more than the spec's
#: ``max_drop_fraction`` of the rows entering it for one of these fails the build. Readers may
#: prefix a reason with their dataset (``"dota: missing image"``): see :func:`loss_reason`.
DATA_LOSS_REASONS = frozenset({
    "missing_image", "undecodable_image", "image_too_large", "invalid_coordinates", "no_coordinates",
    "malformed_line", "malformed_record", "malformed_object", "bad_record", "bad_shard", "missing_annotation",
})

#: the embedded image files of the last build with their size and mtime (the up-to-date check)
IMAGES_SIDECAR = own.IMAGES_SIDECAR

_VERSIONED = ("datasets", "polars", "pyarrow", "duckdb", "numpy", "scipy", "h3", "reverse_geocoder", "pycountry")


def data_dir() -> Path:
    """Where the embedded samples are written: ``$GEODATA_DATA`` or ``./data``."""
    return Path(os.environ.get("GEODATA_DATA", "data"))


def sample_root(reader: str) -> Path:
    return data_dir() / "samples" / reader


def resolve_root(src: SourceSpec, info: SourceInfo, write_sample: bool = True) -> Path:
    """The root of a source: the spec's ``root``, else ``$<ENV>``, else the embedded sample."""
    if src.root:
        return Path(src.root).expanduser()
    if os.environ.get(info.env):
        return Path(os.environ[info.env]).expanduser()
    root = sample_root(info.name)
    if not own.is_sample(root):
        if info.sample is None or not write_sample:
            raise SourceError(f"source '{info.name}': set {info.env} to its root folder")
        own.check_out(root, "sample", flag=f"{info.env} is not set and the sample folder")
        log.warning("%s is not set: writing the embedded %s sample to %s", info.env, info.name, root)
        write_sample_to(info, root)
    return root


def write_sample_to(info: SourceInfo, root: Path) -> None:
    """Write a source's sample atomically (into a temp folder, then rename).

    ``root`` is replaced only when it is missing, empty or a sample geodata wrote (its
    ``.complete`` marker); anything else is an :class:`~geodata.errors.OwnershipError`.
    """
    assert info.sample is not None
    root = own.check_out(Path(root), "sample")
    root.parent.mkdir(parents=True, exist_ok=True)
    own.clean_stale_temps(root)
    own.clean_stale_temps(root, "old")
    tmp = own.make_temp(root)
    try:
        info.sample(tmp)
        own.mark_sample(tmp)
        (tmp / own.TEMP_MARKER).unlink()
        if root.exists() and not any(root.iterdir()):
            root.rmdir()
        if root.exists():
            own.check_out(root, "sample")
            old = own.make_temp(root, "old")
            os.replace(root, old / "sample")
            os.replace(tmp, root)
            shutil.rmtree(old)  # marked: holds only the sample geodata wrote
        else:
            os.replace(tmp, root)
    finally:
        if tmp.exists():
            (tmp / own.TEMP_MARKER).write_text("")
            own.remove_temp(tmp)


def _input_fingerprint(info: SourceInfo, root: Path, params: dict[str, Any]) -> str:
    if info.fingerprint is not None:
        files = info.fingerprint(root, **params)
    else:
        files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    return stat_digest([root, *files]) if files else stat_digest([root])


def _versions() -> dict[str, str]:
    out = {"geodata": __version__}
    for pkg in _VERSIONED:
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class StepStat:
    step: str
    rows_in: int
    rows_out: int
    seconds: float
    drops: dict[str, int] = field(default_factory=dict)


@dataclass
class BuildResult:
    """What a build did: ``status`` is ``built`` or ``up to date``."""

    name: str
    path: Path
    status: str
    fingerprint: str
    rows: int = 0
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    steps: list[StepStat] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Flow:
    """The tables and facts of one build so far; owned by the engine, never handed to a step.

    ``tables`` maps every name a join may give in ``inputs`` (the sources, then
    ``<step>.<table>`` and ``<step>`` for what earlier steps provide) to its table;
    ``emitted`` holds the further configs to write, ``notes`` the notes in step order.
    """

    seed: int = 0
    spec_path: Path | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    emitted: dict[str, pl.DataFrame] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def context(self, name: str, part: int = 0) -> StepContext:
        """The read-only context of the step or reader ``name`` (``part``: a map step's chunk)."""
        return StepContext(seed=self.seed, name=name, limits=self.limits, spec_path=self.spec_path, part=part)

    def collect(self, name: str, res: Any, what: str) -> StepOutput:
        """Check what a step or reader returned; merge its notes and emitted tables in order."""
        res = _as_output(res, what)
        for reason, n in res.drops.items():
            log.info("%s: dropped %d rows (%s)", name, n, reason)
        self.notes.update(res.notes)
        self.emitted.update(res.tables)
        return res

    def inputs(self, key: str, refs: dict[str, str]) -> dict[str, pl.DataFrame]:
        """The tables a join names in its spec ``inputs``, by parameter name."""
        missing = {n: r for n, r in refs.items() if r not in self.tables}
        if missing:
            n, r = next(iter(missing.items()))
            raise BuildError(f"step '{key}': input {n}: no table '{r}' (tables so far: {', '.join(self.tables)})")
        return {n: self.tables[r] for n, r in refs.items()}


def _as_output(res: Any, what: str) -> StepOutput:
    """``res`` as a StepOutput with rows, or a BuildError naming ``what``."""
    if isinstance(res, pl.DataFrame):
        res = StepOutput(res)
    if not isinstance(res, StepOutput) or not isinstance(res.rows, pl.DataFrame):
        got = type(res.rows if isinstance(res, StepOutput) else res).__name__
        raise BuildError(f"{what} returned {got}, not a polars DataFrame (or a StepOutput with rows)")
    return res


def _run_map(info: Any, key: str, params: dict[str, Any], df: pl.DataFrame, flow: Flow,
             runner: Any, chunk_rows: int, what: str) -> StepOutput:
    """Run the map step ``info`` in consecutive chunks of ``chunk_rows`` rows on ``runner``.

    The chunks depend on the plan only (``output.map_chunk_rows``), and their outputs are
    merged in chunk order by :meth:`StepOutput.combine`, so every runner and worker count
    gives the same rows, drops and notes. A frame of at most ``chunk_rows`` rows is one call
    here, with the context of an unchunked step (``part=0``).
    """
    if df.height <= chunk_rows:
        return StepOutput.combine([_as_output(info.fn(df, flow.context(key), **params), what)], key)
    args = ((info.name, df.slice(start, chunk_rows), flow.context(key, part=i), params)
            for i, start in enumerate(range(0, df.height, chunk_rows)))
    parts = [_as_output(res, f"{what} (chunk {i})")
             for i, res in enumerate((runner or InProcess()).imap(run_map_chunk, args))]
    return StepOutput.combine(parts, key)


def loss_reason(reason: str) -> str | None:
    """The data-loss reason behind a drop reason, or None for an intended selection.

    Examples
    --------
    >>> loss_reason("missing_image"), loss_reason("dota: missing image"), loss_reason("not_sampled")
    ('missing_image', 'missing_image', None)
    """
    kind = reason.rsplit(": ", 1)[-1].strip().lower().replace(" ", "_")
    return kind if kind in DATA_LOSS_REASONS else None


def _missing_ids(df: pl.DataFrame | None, column: str = "images") -> list[str]:
    if df is None or "id" not in df.columns or column not in df.columns:
        return []
    return [str(x) for x in df.filter(images_missing(pl.col(column)))["id"].head(3).to_list()]


def _likely_cause(
    kind: str, source: str, spec: Spec, ctx: Flow, roots: dict[str, Path],
    df_in: pl.DataFrame | None, examples: list[str],
) -> str:
    src = spec.sources.get(source)
    reader = src.reader if src is not None else source
    root = roots.get(source)
    if kind == "missing_image":
        layout = ctx.notes.get(f"{reader}.image_layout")
        if layout is None:
            layout = next((v for k, v in sorted(ctx.notes.items()) if k.endswith(".image_layout")), "unknown")
        ex = examples or list(ctx.notes.get(f"{reader}.missing_examples") or [])[:3] or _missing_ids(df_in)
        env = ""
        try:
            env = get_source(reader).env
        except Exception:  # noqa: BLE001 - only for the message
            pass
        return (
            f"images of source '{source}' were looked for under {root} (layout: {layout}); "
            f"not found: {', '.join(repr(e) for e in ex) or '(no ids)'}; check {env or 'the root'} "
            f"and the image layout (`geodata catalog {reader}`)"
        )
    if kind in ("undecodable_image", "image_too_large"):
        ex = ", ".join(repr(e) for e in examples)
        what = (f"images larger than max_image_pixels={spec.max_image_pixels}" if kind == "image_too_large"
                else "image files that exist but do not decode (truncated, or not images)")
        return f"{what}{' e.g. ' + ex if ex else ''} in source '{source}' under {root}"
    if kind in ("invalid_coordinates", "no_coordinates"):
        return f"lat/lon null, not numeric, out of range or (0, 0) in source '{source}' under {root}: are they the right columns?"
    return f"records of source '{source}' under {root} that do not parse: is it the right file and format?"


def _check_losses(
    step: str, rows_in: int, drops: dict[str, int], spec: Spec, ctx: Flow, roots: dict[str, Path],
    source: str, df_in: pl.DataFrame | None = None, examples: dict[str, list[str]] | None = None,
) -> None:
    """Fail when ``step`` lost more than ``max_drop_fraction`` of ``rows_in`` for one data-loss reason."""
    if rows_in <= 0:
        return
    limit = spec.max_drop_fraction
    for reason, n in sorted(drops.items(), key=lambda kv: -kv[1]):
        kind = loss_reason(reason)
        if kind is None or n <= limit * rows_in:
            continue
        cause = _likely_cause(kind, source, spec, ctx, roots, df_in, (examples or {}).get(reason, []))
        raise BuildError(
            f"{spec.name}: {step} lost {n} of {rows_in} rows ({n / rows_in:.0%}) as '{reason}', more than "
            f"max_drop_fraction={limit:g}: {cause} (raise max_drop_fraction in the spec if this is expected)"
        )


def read_sources(spec: Spec, flow: Flow, roots: dict[str, Path]) -> list[StepStat]:
    """Run each source reader with its own context; its rows become table ``<source name>``.

    A source with no rows, or one that lost too many for one data-loss reason, is an error.
    """
    stats = []
    for name, src in spec.sources.items():
        info = get_source(src.reader)
        key = f"read:{name}"
        t = time.perf_counter()
        res = flow.collect(key, info.fn(flow.context(key), root=roots[name], **src.params),
                           f"source '{name}' ({src.reader})")
        df, drops = res.rows, dict(res.drops)
        seen = df.height + sum(drops.values())
        _check_losses(key, seen, drops, spec, flow, roots, name)
        if df.height == 0:
            lost = ", ".join(f"{k}: {v}" for k, v in sorted(drops.items()))
            raise SourceError(
                f"source '{name}' ({src.reader}): no rows under {roots[name]}"
                + (f" (dropped {lost})" if lost else "") + "; a build needs at least one"
            )
        flow.tables[name] = df
        stats.append(StepStat(key, 0, df.height, time.perf_counter() - t, drops))
    return stats


def run_steps(
    spec: Spec, flow: Flow, progress: Any = None, roots: dict[str, Path] | None = None,
    runner: Any = None,
) -> tuple[pl.DataFrame, list[StepStat]]:
    """Apply the spec's steps in order to its input table; return rows and per-step stats.

    Each step gets a fresh read-only context and, for a join, the tables its ``inputs`` name.
    A ``map`` step runs on ``runner`` (default: this process) in chunks of
    ``spec.output.map_chunk_rows`` rows (see :func:`_run_map`); one registered with
    ``parallel=False``, and ``frame`` and ``join`` steps, run here over the whole frame.
    A step that loses more than ``spec.max_drop_fraction`` of its rows for one data-loss
    reason, or leaves no rows, fails the build with the reason, the count and a likely cause.
    """
    df = flow.tables[spec.input_name]
    roots = roots or {}
    stats = []
    for st in spec.steps:
        info = get_step(st.step)
        if progress is not None:
            progress(st.key)
        t = time.perf_counter()
        rows_in = df.height
        tables = flow.inputs(st.key, st.inputs) if info.kind == "join" else {}
        what = f"step '{st.key}'"
        if info.kind == "map":  # parallel=False: one chunk, the whole frame, on the driver
            chunk = spec.output.map_chunk_rows if info.parallel else max(df.height, 1)
            res = _run_map(info, st.key, st.params, df, flow, runner, chunk, what)
        else:
            res = info.fn(df, flow.context(st.key), **st.params, **tables)
        res = flow.collect(st.key, res, what)
        for tname, table in res.provides.items():
            flow.tables[f"{st.key}.{tname}"] = table
        if len(res.provides) == 1:
            flow.tables[st.key] = next(iter(res.provides.values()))
        out, drops = res.rows, dict(res.drops)
        stats.append(StepStat(st.key, rows_in, out.height, time.perf_counter() - t, drops))
        _check_losses(f"step '{st.key}'", rows_in, drops, spec, flow, roots, spec.input_name, df_in=df)
        if out.height == 0 and rows_in > 0:
            lost = ", ".join(f"{k}: {v}" for k, v in sorted(drops.items())) or "no drops recorded"
            raise BuildError(f"{spec.name}: step '{st.key}' left 0 of {rows_in} rows ({lost}); a build needs at least one")
        df = out
    return df, stats


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


def _images_unchanged(out: Path, want: str | None) -> bool:
    """True when every image file the last build embedded has the size and mtime it had then (``want``)."""
    if want is None:
        return True
    try:
        files = pl.read_ipc(out / IMAGES_SIDECAR, columns=["file"])["file"].to_list()
    except (OSError, pl.exceptions.PolarsError):  # no or unreadable sidecar: rebuild
        return False
    return files_digest(stat_files(files)) == want


def _project_path(path: Path | None) -> str | None:
    """The spec file relative to its project (``pipelines/NAME.yaml``), never an absolute path."""
    if path is None:
        return None
    p = Path(path).resolve()
    if p.parent.name == "pipelines":
        return f"pipelines/{p.name}"
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.name


def build(
    name_or_path: str | Path | Spec,
    sets: Iterable[str] = (),
    out: Path | None = None,
    force: bool = False,
    progress: bool = False,
    runner: str | Any = "local",
    workers: int | str | None = 1,
) -> BuildResult:
    """Build one dataset from its spec.

    Parameters
    ----------
    name_or_path
        A pipeline name (``mp16-rand-500k`` → ``pipelines/mp16-rand-500k.yaml``), a YAML
        path, or a loaded :class:`~geodata.spec.Spec`.
    sets
        ``key.path=value`` overrides (``sample.n=1000``).
    out
        The dataset folder (default ``datasets/<name>``). It must be missing, empty or a
        dataset geodata built (see :mod:`geodata._ownership`); files in it that geodata did not
        write are kept.
    force
        Rebuild even when the fingerprint says the folder is up to date.
    progress
        Show a live progress display on stderr.
    runner, workers
        Where the map steps and the image plane run (:mod:`geodata.runners`): ``local`` (``workers=1``: this
        process; ``0``/``"auto"``: all cores) or ``ray``. The output is byte-identical whatever
        the runner and worker count, and neither is recorded in the fingerprint or the card.
    """
    t0 = time.perf_counter()
    spec = name_or_path if isinstance(name_or_path, Spec) else load_spec(name_or_path, sets)
    run = get_runner(runner, workers)  # checked before the up-to-date test; starts nothing yet
    out = Path(out) if out is not None else datasets_dir() / spec.name
    own.check_out(out, "dataset")
    out.parent.mkdir(parents=True, exist_ok=True)
    own.restore_interrupted(out)

    roots = {n: resolve_root(s, get_source(s.reader)) for n, s in spec.sources.items()}
    inputs = {n: _input_fingerprint(get_source(s.reader), roots[n], s.params) for n, s in spec.sources.items()}
    spec_fp = spec.fingerprint()
    fingerprint = _combine(spec_fp, inputs)
    from_sample = sorted(n for n, s in spec.sources.items() if _from_sample(s, get_source(s.reader)))
    manifest_path = out / "manifest.json"
    if not force and manifest_path.exists():
        from .dataset import DatasetError

        try:
            old = Dataset.open(out).manifest
        except DatasetError:  # unreadable or not ours: rebuild (the ownership rule guards the folder)
            old = None
        _check_not_downgraded(out, old, from_sample, spec)
        incomplete = _incomplete(old.stats.notes) if old is not None else []
        for key, why in incomplete:  # e.g. model requests that failed: this build sends them again
            log.warning("%s: the last build is incomplete (%s: %s): rebuilding", spec.name, key, why)
        if (old is not None and not incomplete and old.fingerprint == fingerprint
                and _images_unchanged(out, old.images_digest)):
            return BuildResult(spec.name, out, "up to date", fingerprint, rows=old.rows,
                               configs={c: {s: v.num_rows for s, v in sp.items()} for c, sp in old.configs.items()})

    from ._progress import BuildProgress

    ui = BuildProgress(spec.name, enabled=progress)
    limits = {"max_drop_fraction": spec.max_drop_fraction, "min_prediction_coverage": spec.min_prediction_coverage,
              "max_image_pixels": spec.max_image_pixels}
    ctx = Flow(seed=spec.seed, spec_path=spec.path, limits=dict(limits))
    tmp: Path | None = None
    try:
        with ui, run:
            run.start()  # workers start up while this process reads the sources
            ui.stage("reading sources")
            stats = read_sources(spec, ctx, roots)
            df, step_stats = run_steps(spec, ctx, progress=ui.stage, roots=roots, runner=run)
            stats += step_stats
            check_core_columns(df.columns, f"{spec.path}: rows after the last step")
            df = _select_columns(df, spec)
            image_files = _embedded_files([df, *ctx.emitted.values()])
            image_stats = stat_files(image_files)
            tmp = own.make_temp(out)
            ui.stage("writing shards")
            ui.start_rows(df.height + sum(t.height for t in ctx.emitted.values()))
            configs: dict[str, dict[str, SplitEntry]] = {}
            files: dict[str, FileEntry] = {}
            features: dict[str, Any] = {}
            write_drops: dict[str, int] = {}
            write_examples: dict[str, list[str]] = {}
            t = time.perf_counter()
            rows_in = df.height
            parts = _partitions(df, spec)
            for config, split, pdf in parts:
                prefix = "data" if config == "default" and not spec.output.config_by else config
                res = write_partition(
                    pdf, tmp, prefix, config=config, split=split,
                    shard_max_mb=spec.output.shard_max_mb, row_group_rows=spec.output.row_group_rows,
                    check_images=spec.output.check_images, max_image_pixels=spec.max_image_pixels,
                    on_rows=ui.advance, runner=run,
                )
                _record(res, configs, files, features)
                for k, v in res.drops.items():
                    write_drops[k] = write_drops.get(k, 0) + v
                for k, v in res.examples.items():
                    write_examples[k] = (write_examples.get(k, []) + v)[:3]
            written = sum(s.num_rows for c in configs.values() for s in c.values())
            stats.append(StepStat("write", rows_in, written, time.perf_counter() - t, write_drops))
            _check_losses("write", rows_in, write_drops, spec, ctx, roots, spec.input_name, examples=write_examples)
            if written == 0:
                lost = ", ".join(f"{k}: {v}" for k, v in sorted(write_drops.items())) or "no rows reached the writer"
                raise BuildError(f"{spec.name}: the build wrote 0 rows ({lost}); a build needs at least one")
            for config, edf in sorted(ctx.emitted.items()):
                if config in configs:
                    raise BuildError(f"emitted table '{config}' clashes with a config of the rows")
                res = write_partition(edf, tmp, config, config=config, split="train",
                                      shard_max_mb=spec.output.shard_max_mb,
                                      row_group_rows=spec.output.row_group_rows,
                                      check_images=spec.output.check_images,
                                      max_image_pixels=spec.max_image_pixels, on_rows=ui.advance,
                                      runner=run)
                _record(res, configs, files, features)
            all_drops: dict[str, int] = {}
            for s in stats:
                for k, v in s.drops.items():
                    all_drops[k] = all_drops.get(k, 0) + v
            manifest = Manifest(
                written_by=own.MANIFEST_MARKER[1],
                name=spec.name,
                fingerprint=fingerprint,
                spec_fingerprint=spec_fp,
                spec_file=_project_path(spec.path),
                inputs=inputs,
                sample_sources=from_sample,
                images_digest=files_digest(image_stats) if image_files else None,
                images_files=len(image_files),
                geodata_version=__version__,
                versions=_versions(),
                default_config=sorted(configs)[0] if spec.output.config_by else spec.output.default_config,
                spec=spec.canonical(),
                limits=limits,
                rows=written,
                configs=configs,
                files=files,
                # timing-free, so the manifest is as deterministic as the shards
                stats=BuildStats(
                    steps=[{k: v for k, v in s.__dict__.items() if k != "seconds"} for s in stats],
                    drops=all_drops,
                    notes={k: _jsonable(v) for k, v in ctx.notes.items()},
                ),
            )
            if image_files:
                image_stats.write_ipc(tmp / IMAGES_SIDECAR, compression="zstd")
            (tmp / "manifest.json").write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
            card = build_card(_card_view(manifest, roots), features)
            from .report import carry_report  # a report of the same shards stays, figures and section

            kept = carry_report(out, tmp, manifest.content_digest())
            if kept is not None:
                card = card.with_section("report", kept)
            Dataset(tmp, manifest).write_card(card)
            timed = {**manifest.stats.model_dump(mode="json"), "steps": [s.__dict__ for s in stats]}  # with seconds
            (tmp / "build_stats.json").write_text(json.dumps(timed, indent=2) + "\n")
        own.swap_in(tmp, out)
    except BaseException:
        if tmp is not None:
            own.remove_temp(tmp)
        raise
    result = BuildResult(
        spec.name, out, "built", fingerprint, rows=written,
        configs={c: {s: v.num_rows for s, v in sp.items()} for c, sp in manifest.configs.items()},
        steps=stats, drops=manifest.stats.drops, notes=dict(ctx.notes),
        seconds=time.perf_counter() - t0,
    )
    return result


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


def _from_sample(src: SourceSpec, info: SourceInfo) -> bool:
    """The source is read from geodata's embedded sample: no root in the spec, no environment variable."""
    return not src.root and not (info.env and os.environ.get(info.env))


def _check_not_downgraded(out: Path, old: Any, from_sample: list[str], spec: Spec) -> None:
    """Refuse to replace a dataset built from the user's own input with one from the embedded sample.

    A plain rerun without the environment variable (a bare ``make eval`` rebuilding
    ``mp16-hard-200k``) would otherwise swap the user's predictions for the simulated ones.
    """
    if old is None or old.sample_sources is None:
        return
    newly = [n for n in from_sample if n not in old.sample_sources]
    if not newly:
        return
    name = newly[0]
    env = get_source(spec.sources[name].reader).env
    raise BuildError(
        f"{out}: built from your own '{name}' input, and {env} is not set now: this build would replace it with one "
        f"from the embedded sample. Set {env} again (or --set sources.{name}.root=PATH), build into another folder "
        f"with --out, or pass --force to replace it"
    )


def _incomplete(notes: dict[str, Any]) -> list[tuple[str, Any]]:
    """Notes ``<step>.incomplete`` of a build: it must not count as up to date (see
    :mod:`geodata.steps.predict`: requests that failed are sent again by the next build)."""
    return [(k, v) for k, v in sorted(notes.items()) if k.endswith(".incomplete") and v]


def _combine(spec_fp: str, inputs: dict[str, str]) -> str:
    import hashlib

    h = hashlib.sha256(spec_fp.encode())
    for k in sorted(inputs):
        h.update(f"{k}={inputs[k]}".encode())
    h.update(__version__.encode())
    return h.hexdigest()
