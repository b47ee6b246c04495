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
from ._cache import stat_digest
from .card import render_card
from .context import StepContext, StepOutput
from .errors import BuildError, SourceError
from .registry import SourceInfo, get_source, get_step
from .runners import get_runner
from .schema import CORE_COLUMNS, check_core_columns
from .spec import SourceSpec, Spec, load_spec
from .writer import write_partition

__all__ = ["build", "BuildResult", "datasets_dir", "data_dir", "resolve_root", "run_steps", "read_sources", "Flow"]

log = logging.getLogger("geodata")

_VERSIONED = ("datasets", "polars", "pyarrow", "duckdb", "numpy", "scipy", "h3", "reverse_geocoder", "pycountry")


def datasets_dir() -> Path:
    """Where built datasets live: ``$GEODATA_DATASETS`` or ``./datasets``."""
    return Path(os.environ.get("GEODATA_DATASETS", "datasets"))


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
    if not (root / ".complete").exists():
        if info.sample is None or not write_sample:
            raise SourceError(f"source '{info.name}': set {info.env} to its root folder")
        log.warning("%s is not set: writing the embedded %s sample to %s", info.env, info.name, root)
        write_sample_to(info, root)
    return root


def write_sample_to(info: SourceInfo, root: Path) -> None:
    """Write a source's sample atomically (into a temp folder, then rename)."""
    assert info.sample is not None
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        info.sample(tmp)
        (tmp / ".complete").write_text("sample written by geodata\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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

    def context(self, name: str) -> StepContext:
        """The read-only context of the step or reader ``name``."""
        return StepContext(seed=self.seed, name=name, limits=self.limits, spec_path=self.spec_path)

    def collect(self, name: str, res: Any, what: str) -> StepOutput:
        """Check what a step or reader returned; merge its notes and emitted tables in order."""
        if isinstance(res, pl.DataFrame):
            res = StepOutput(res)
        if not isinstance(res, StepOutput) or not isinstance(res.rows, pl.DataFrame):
            got = type(res.rows if isinstance(res, StepOutput) else res).__name__
            raise BuildError(f"{what} returned {got}, not a polars DataFrame (or a StepOutput with rows)")
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


def read_sources(spec: Spec, flow: Flow, roots: dict[str, Path]) -> list[StepStat]:
    """Run each source reader with its own context; its rows become table ``<source name>``."""
    stats = []
    for name, src in spec.sources.items():
        info = get_source(src.reader)
        key = f"read:{name}"
        t = time.perf_counter()
        res = flow.collect(key, info.fn(flow.context(key), root=roots[name], **src.params),
                           f"source '{name}' ({src.reader})")
        flow.tables[name] = res.rows
        stats.append(StepStat(key, 0, res.rows.height, time.perf_counter() - t, dict(res.drops)))
    return stats


def run_steps(spec: Spec, flow: Flow, progress: Any = None) -> tuple[pl.DataFrame, list[StepStat]]:
    """Apply the spec's steps in order to its input table; return rows and per-step stats.

    Each step gets a fresh read-only context and, for a join, the tables its ``inputs`` name.
    """
    df = flow.tables[spec.input_name]
    stats = []
    for st in spec.steps:
        info = get_step(st.step)
        if progress is not None:
            progress(st.key)
        t = time.perf_counter()
        rows_in = df.height
        tables = flow.inputs(st.key, st.inputs) if info.kind == "join" else {}
        res = flow.collect(st.key, info.fn(df, flow.context(st.key), **st.params, **tables), f"step '{st.key}'")
        for tname, table in res.provides.items():
            flow.tables[f"{st.key}.{tname}"] = table
        if len(res.provides) == 1:
            flow.tables[st.key] = next(iter(res.provides.values()))
        stats.append(StepStat(st.key, rows_in, res.rows.height, time.perf_counter() - t, dict(res.drops)))
        df = res.rows
    return df, stats


def _restore_interrupted(out: Path) -> None:
    """Clean up after a build killed mid-way: drop temp folders, restore a swapped-out copy."""
    for p in out.parent.glob(f".{out.name}.tmp-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        shutil.rmtree(p, ignore_errors=True)
    olds = sorted(out.parent.glob(f".{out.name}.old-*"))
    if olds and not out.exists():
        os.replace(olds[-1], out)
        olds = olds[:-1]
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


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
        The dataset folder (default ``datasets/<name>``).
    force
        Rebuild even when the fingerprint says the folder is up to date.
    progress
        Show a live progress display on stderr.
    runner, workers
        Where the image plane runs (:mod:`geodata.runners`): ``local`` (``workers=1``: this
        process; ``0``/``"auto"``: all cores) or ``ray``. The output is byte-identical whatever
        the runner and worker count, and neither is recorded in the fingerprint or the card.
    """
    t0 = time.perf_counter()
    spec = name_or_path if isinstance(name_or_path, Spec) else load_spec(name_or_path, sets)
    run = get_runner(runner, workers)  # checked before the up-to-date test; starts nothing yet
    out = Path(out) if out is not None else datasets_dir() / spec.name
    out.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted(out)

    roots = {n: resolve_root(s, get_source(s.reader)) for n, s in spec.sources.items()}
    inputs = {n: _input_fingerprint(get_source(s.reader), roots[n], s.params) for n, s in spec.sources.items()}
    spec_fp = spec.fingerprint()
    fingerprint = _combine(spec_fp, inputs)
    manifest_path = out / "manifest.json"
    if not force and manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("fingerprint") == fingerprint:
            rows = old.get("rows", 0)
            return BuildResult(spec.name, out, "up to date", fingerprint, rows=rows,
                               configs={c: {s: v["num_rows"] for s, v in sp.items()} for c, sp in old["configs"].items()})

    from ._progress import BuildProgress

    ui = BuildProgress(spec.name, enabled=progress)
    ctx = Flow(seed=spec.seed, spec_path=spec.path)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with ui, run:
            ui.stage("reading sources")
            stats = read_sources(spec, ctx, roots)
            df, step_stats = run_steps(spec, ctx, progress=ui.stage)
            stats += step_stats
            check_core_columns(df.columns, f"{spec.path}: rows after the last step")
            df = _select_columns(df, spec)
            tmp.mkdir(parents=True)
            ui.stage("writing shards")
            ui.start_rows(df.height + sum(t.height for t in ctx.emitted.values()))
            configs: dict[str, dict[str, Any]] = {}
            files: dict[str, Any] = {}
            features: dict[str, Any] = {}
            write_drops: dict[str, int] = {}
            t = time.perf_counter()
            rows_in = df.height
            parts = _partitions(df, spec)
            for config, split, pdf in parts:
                prefix = "data" if config == "default" and not spec.output.config_by else config
                res = write_partition(
                    pdf, tmp, prefix, config=config, split=split,
                    shard_max_mb=spec.output.shard_max_mb, row_group_rows=spec.output.row_group_rows,
                    check_images=spec.output.check_images, on_rows=ui.advance, runner=run,
                )
                _record(res, configs, files, features)
                for k, v in res.drops.items():
                    write_drops[k] = write_drops.get(k, 0) + v
            written = sum(s["num_rows"] for c in configs.values() for s in c.values())
            stats.append(StepStat("write", rows_in, written, time.perf_counter() - t, write_drops))
            for config, edf in sorted(ctx.emitted.items()):
                if config in configs:
                    raise BuildError(f"emitted table '{config}' clashes with a config of the rows")
                res = write_partition(edf, tmp, config, config=config, split="train",
                                      shard_max_mb=spec.output.shard_max_mb,
                                      row_group_rows=spec.output.row_group_rows,
                                      check_images=spec.output.check_images, on_rows=ui.advance, runner=run)
                _record(res, configs, files, features)
            all_drops: dict[str, int] = {}
            for s in stats:
                for k, v in s.drops.items():
                    all_drops[k] = all_drops.get(k, 0) + v
            manifest = {
                "name": spec.name,
                "fingerprint": fingerprint,
                "spec_fingerprint": spec_fp,
                "spec_file": spec.path.as_posix() if spec.path else None,
                "inputs": inputs,
                "geodata_version": __version__,
                "versions": _versions(),
                "default_config": spec.output.default_config if not spec.output.config_by else sorted(configs)[0],
                "spec": spec.canonical(),
                "rows": written,
                "configs": configs,
                "files": files,
                "stats": {
                    # timing-free, so the manifest is as deterministic as the shards
                    "steps": [{k: v for k, v in s.__dict__.items() if k != "seconds"} for s in stats],
                    "drops": all_drops,
                    "notes": {k: _jsonable(v) for k, v in ctx.notes.items()},
                },
            }
            if spec.output.config_by:
                manifest["default_config"] = sorted(configs)[0]
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
            (tmp / "README.md").write_text(render_card(_card_view(manifest), features))
            timed = {**manifest["stats"], "steps": [s.__dict__ for s in stats]}  # with seconds
            (tmp / "build_stats.json").write_text(json.dumps(timed, indent=2) + "\n")
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = BuildResult(
        spec.name, out, "built", fingerprint, rows=written,
        configs={c: {s: v["num_rows"] for s, v in sp.items()} for c, sp in configs.items()},
        steps=stats, drops=manifest["stats"]["drops"], notes=dict(ctx.notes),
        seconds=time.perf_counter() - t0,
    )
    return result


def _card_view(manifest: dict[str, Any]) -> dict[str, Any]:
    # the card carries no timings, so it is as deterministic as the shards
    view = dict(manifest)
    view["stats"] = dict(manifest["stats"])
    view["stats"]["steps"] = [{k: v for k, v in s.items() if k != "seconds"} for s in manifest["stats"]["steps"]]
    return view


def _record(res: Any, configs: dict, files: dict, features: dict) -> None:
    configs.setdefault(res.config, {})[res.split] = {
        "num_rows": res.rows, "files": [f.path for f in res.files]
    }
    for f in res.files:
        files[f.path] = {"sha256": f.sha256, "bytes": f.bytes, "rows": f.rows}
    features[res.config] = res.features


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)


def _combine(spec_fp: str, inputs: dict[str, str]) -> str:
    import hashlib

    h = hashlib.sha256(spec_fp.encode())
    for k in sorted(inputs):
        h.update(f"{k}={inputs[k]}".encode())
    h.update(__version__.encode())
    return h.hexdigest()


def _swap(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
