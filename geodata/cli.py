"""The ``geodata`` command line (typer + rich)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import GeodataError

app = typer.Typer(
    help="Build, inspect and publish geospatial-reasoning datasets for VLM post-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# markup=False everywhere: nothing a user typed or a path holds ('/data/[old]/mp16', 'grpo[vqa]')
# is read as rich markup; styled words are Text objects
console = Console(markup=False)
err = Console(stderr=True, markup=False)
_DEBUG = {"on": False}


def _debug() -> bool:
    return _DEBUG["on"] or os.environ.get("GEODATA_DEBUG", "") not in ("", "0")


def _error_line(msg: str) -> Text:
    return Text.assemble(("error:", "red"), " ", " ".join(str(msg).split("\n")))


class _LineFormatter(logging.Formatter):
    """``warning: message`` on one line (no wrapping: paths stay whole, copy-pasteable)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {' '.join(record.getMessage().splitlines())}"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn geodata's input errors (and OS errors) into one red line and exit code 2.

    ``--debug`` (or ``GEODATA_DEBUG=1``) shows the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (GeodataError, OSError) as exc:
            if _debug():
                raise
            msg = str(exc) if isinstance(exc, GeodataError) else f"{type(exc).__name__}: {exc}"
            err.print(_error_line(msg), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log each drop and stage"),
    debug: bool = typer.Option(False, "--debug", help="show the traceback of an error (also GEODATA_DEBUG=1)"),
) -> None:
    _DEBUG["on"] = debug
    _setup_logging(verbose)


def _print_build(res: Any) -> None:
    if res.status == "up to date":
        console.print(Text.assemble((res.name, "green"), f" is up to date ({res.rows} rows at {res.path}); --force rebuilds"))
        return
    t = Table(title=f"{res.name}: built {res.rows} rows in {res.seconds:.1f} s → {res.path}")
    for col in ("step", "rows in", "rows out", "seconds", "dropped"):
        t.add_column(col, justify="right" if col in ("rows in", "rows out", "seconds") else "left")
    for s in res.steps:
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(s.drops.items()))
        t.add_row(s.step, str(s.rows_in), str(s.rows_out), f"{s.seconds:.2f}", drops)
    console.print(t)
    for k, v in sorted(res.notes.items()):
        console.print(f"  note: {k}: {v}", highlight=False)
    if len(res.configs) > 1 or any(len(s) > 1 for s in res.configs.values()):
        console.print("  configs: " + "; ".join(f"{c} " + ", ".join(f"{s}={n}" for s, n in sp.items()) for c, sp in res.configs.items()))


@app.command()
@cli_errors
def build(
    name: str = typer.Argument(..., help="pipeline name (pipelines/NAME.yaml) or a YAML path"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="override a spec value: key.path=value"),
    out: Optional[Path] = typer.Option(None, "--out", help="dataset folder (default datasets/<name>)"),
    force: bool = typer.Option(False, "--force", help="rebuild even if up to date"),
    runner: str = typer.Option("local", "--runner", help="where map steps and the image plane run: local | ray (same bytes)"),
    workers: str = typer.Option("1", "--workers", help="processes (local) or CPUs (local ray); 0 or auto = all cores"),
) -> None:
    """Build one dataset from its pipeline spec."""
    from .engine import build as _build

    res = _build(name, sets=set_ or [], out=out, force=force, progress=err.is_terminal,
                 runner=runner, workers=workers)
    _print_build(res)


@app.command()
@cli_errors
def sql(
    query: str = typer.Argument(..., help="a DuckDB query; built datasets are views (mp16_rand_500k ...)"),
    datasets: Path = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    max_rows: int = typer.Option(50, "--max-rows", help="rows shown in table format"),
    hub: Optional[List[str]] = typer.Option(
        None, "--hub", help="also a published set: ORG/NAME (hf://datasets/ORG/NAME/**/*.parquet) or a folder"
    ),
) -> None:
    """Run SQL over every built dataset (DuckDB), and over published sets with --hub."""
    import duckdb

    from .engine import datasets_dir
    from .sql import connect

    con = connect(datasets or datasets_dir())
    if hub:
        from .shell import register_published

        for ref in hub:
            register_published(con, ref)
    if fmt not in ("table", "csv", "json"):
        raise GeodataError(f"sql: unknown --format '{fmt}' (allowed: table, csv, json)")
    try:
        rel = con.sql(query)
        if rel is None:
            return
        df = rel.pl()
    except duckdb.Error as exc:  # parse, bind and runtime errors alike: one line
        raise GeodataError(f"sql: {str(exc).splitlines()[0]}") from None
    if fmt == "csv":
        _json_nested(df).write_csv(sys.stdout)
    elif fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=_json_default, indent=1) + "\n")
    else:
        t = Table(show_lines=False)
        for c in df.columns:
            t.add_column(c)
        for row in df.head(max_rows).iter_rows():
            t.add_row(*[_short(v) for v in row])
        console.print(t)
        if df.height > max_rows:
            console.print(f"({df.height} rows, {max_rows} shown; --max-rows N or --format csv)")


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    return str(v)


def _json_nested(df: Any) -> Any:
    """``df`` with nested (list/struct/array) and binary columns as JSON text, for CSV."""
    import polars as pl

    cols = []
    for name, dtype in df.schema.items():
        if dtype.is_nested() or dtype == pl.Binary:
            vals = [None if v is None else json.dumps(v, default=_json_default, ensure_ascii=False)
                    for v in df[name].to_list()]
            cols.append(pl.Series(name, vals, dtype=pl.String))
        else:
            cols.append(df[name])
    return pl.DataFrame(cols)


def _short(v: Any, n: int = 120) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


@app.command()
@cli_errors
def show(
    name: str = typer.Argument(..., help="a built dataset (datasets/NAME) or a folder"),
    n: int = typer.Option(3, "-n", help="rows to show"),
    config: Optional[str] = typer.Option(None, "--config", help="config (default: the default one)"),
) -> None:
    """Print the first rows of a built dataset: prompt, completion, solution."""
    import duckdb

    from .dataset import Dataset
    from .schema import messages_text

    if n < 0:
        raise GeodataError(f"show: -n must be 0 or more, got {n}")
    ds = Dataset.open(name)
    folder = ds.path
    files = [str(f) for f in ds.files(config)]
    try:
        df = duckdb.sql(f"SELECT * FROM read_parquet({files!r}) LIMIT {int(n)}").pl()
    except duckdb.Error as exc:
        raise GeodataError(f"show: cannot read {folder}: {str(exc).splitlines()[0]}") from None
    for row in df.iter_rows(named=True):
        console.rule(f"{row.get('id')}  [{row.get('task', '')}]")
        for key, val in row.items():
            if key in ("prompt", "completion"):
                console.print(Text.assemble((f"{key}:", "bold"), f" {messages_text(val)}"), highlight=False)
            elif key == "images":
                sizes = [len(i["bytes"]) if i and i.get("bytes") else 0 for i in (val or [])]
                console.print(Text.assemble(("images:", "bold"), f" {len(sizes)} ({', '.join(f'{s} B' for s in sizes)})"))
            else:
                console.print(Text.assemble((f"{key}:", "bold"), f" {_short(val, 400)}"), highlight=False)


def _catalog_dir() -> Path:
    for d in (Path.cwd() / "catalogs", Path(__file__).resolve().parent.parent / "catalogs"):
        if d.is_dir():
            return d
    raise GeodataError("catalog: no catalogs/ folder found")


@app.command()
@cli_errors
def catalog(name: Optional[str] = typer.Argument(None, help="show one source in full")) -> None:
    """List the source datasets geodata reads, where they are expected and how to point at them."""
    import os

    import yaml

    entries = []
    for f in sorted(_catalog_dir().glob("*.yaml")):
        entries.append(yaml.safe_load(f.read_text()))
    if name:
        for e in entries:
            if e.get("name") == name:
                console.print(_catalog_text(e), highlight=False, markup=False, soft_wrap=True)
                return
        raise GeodataError(f"catalog: unknown source '{name}' (known: {', '.join(e.get('name', '?') for e in entries)})")
    t = Table(title="sources (geodata catalog NAME for the layout)")
    for col in ("name", "title", "env", "set?", "license"):
        t.add_column(col)
    for e in entries:
        env = e.get("env") or ""
        t.add_row(e.get("name", "?"), e.get("title", ""), env, "yes" if env and os.environ.get(env) else "sample", str(e.get("license", "")))
    console.print(t)


def _catalog_text(entry: dict) -> str:
    """A catalog entry as plain text: one ``key: value`` line, blocks (layout, evidence) indented."""
    lines: list[str] = []
    for key, val in entry.items():
        if isinstance(val, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {v}" for k, v in val.items()]
        elif isinstance(val, list):
            lines.append(f"{key}:")
            lines += [f"  - {v}" for v in val]
        elif isinstance(val, str) and "\n" in val.strip():
            lines.append(f"{key}:")
            lines += ["  " + ln for ln in val.rstrip().splitlines()]
        else:
            lines.append(f"{key}: {str(val).strip()}")
    return "\n".join(lines)


@app.command("sample-data")
@cli_errors
def sample_data(
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the samples (default ./data/samples)"),
    only: Optional[List[str]] = typer.Option(None, "--only", help="write only these sources"),
) -> None:
    """Write the embedded sample of every source in its real on-disk layout."""
    from .engine import sample_root, write_sample_to
    from .registry import SOURCES, _load_all

    _load_all()
    names = sorted(n for n, i in SOURCES.items() if i.sample is not None)
    # predictions are simulated over the MP-16 sample, so MP-16 goes first
    names.sort(key=lambda n: (n != "mp16", n))
    from ._ownership import check_out

    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise GeodataError(f"sample-data: --only {', '.join(unknown)}: no such sample (known: {', '.join(names)})")
    if out is not None and out.exists() and not out.is_dir():
        raise GeodataError(f"--out {out}: is a file, not a folder; geodata never replaces it")
    targets = [(n, (out / n) if out else sample_root(n)) for n in names if not only or n in only]
    for n, root in targets:  # every target is checked before any is written
        check_out(root, "sample")
    for n, root in targets:
        write_sample_to(SOURCES[n], root)
        console.print(f"wrote {n:<12} → {root}")


@app.command()
@cli_errors
def steps() -> None:
    """List the registered steps, sources and rewards."""
    from .registry import REWARDS, SOURCES, STEPS, _load_all

    _load_all()
    for title, table in (("steps", STEPS), ("sources", SOURCES), ("rewards", REWARDS)):
        t = Table(title=title)
        t.add_column("name")
        t.add_column("parameters")
        t.add_column("what it does")
        for n, info in sorted(table.items()):
            params = ", ".join(
                f"{k}={'…' if f.is_required() else repr(f.default)}" for k, f in info.params.model_fields.items()
            )
            kind = getattr(info, "kind", None)
            if kind == "join":
                ins = [*info.inputs, *(f"{i}?" for i in info.optional_inputs)] + (["…"] if info.any_inputs else [])
                params = f"inputs: {', '.join(ins)}" + (f"; {params}" if params else "")
            t.add_row(f"{n} ({kind})" if kind else n, params, info.doc)
        console.print(t)


@app.command()
@cli_errors
def demo(
    force: bool = typer.Option(False, "--force", help="rebuild every dataset"),
) -> None:
    """Write the samples and build every pipeline at sample scale; print a summary."""
    from .engine import build as _build
    from .engine import datasets_dir
    from .spec import pipeline_dirs

    specs = sorted({p.stem: p for d in reversed(pipeline_dirs()) if d.is_dir() for p in d.glob("*.yaml")}.items())
    summary = Table(title="geodata demo: datasets built from the embedded samples")
    for col in ("dataset", "status", "rows", "configs", "dropped rows (see the card)"):
        summary.add_column(col, no_wrap=col == "dataset")
    for name, path in specs:
        res = _build(path, force=force, progress=err.is_terminal)
        dropped = sum(v for k, v in res.drops.items() if k != "not_sampled")
        configs = ", ".join(sorted(res.configs)) if len(res.configs) <= 3 else f"{len(res.configs)} configs"
        summary.add_row(name, res.status, str(res.rows), configs, str(dropped) if res.drops else "-")
    console.print(summary)
    console.print(f"Datasets are under {datasets_dir()}/ ; geodata show NAME prints rows.")
    console.print("Inspect: geodata sql \"SELECT country, count(*) FROM mp16_rand_500k GROUP BY 1 ORDER BY 2 DESC\"")


def main() -> None:  # pragma: no cover - console entry point
    app()


# ======================================================================================
# Commands contributed by the area modules (eval, train, predict, validate, publish,
# report ...). Add new commands below this line with small edits.
# ======================================================================================


# -- training (issue 4): geodata train sft|grpo|validate|recipes|tiny-model, geodata predict --
# The commands import ``training`` inside their bodies: geodata itself never imports torch.
train_app = typer.Typer(help="Train VLMs on built datasets (needs the train extra).", no_args_is_help=True)
app.add_typer(train_app, name="train")

_SET_HELP = "override a recipe value: section.key=value (repeatable)"


_RESUME_HELP = "continue from the last checkpoint-* in train.output_dir, or from the CHECKPOINT given after it"


def _resume_sets(sets: Optional[List[str]], resume: bool, checkpoint: Optional[str]) -> list[str]:
    """``--resume [CHECKPOINT]`` as a ``train.resume_from_checkpoint`` override."""
    from .errors import SpecError

    out = list(sets or [])
    if checkpoint and not resume:
        raise SpecError(f"unexpected argument '{checkpoint}' (a checkpoint goes after --resume)")
    if resume:
        out.append(f"train.resume_from_checkpoint={checkpoint or 'last'}")
    return out


@train_app.command("sft")
@cli_errors
def train_sft(
    recipe: str = typer.Argument(..., help="recipe name (training/recipes/NAME.yaml) or a YAML path"),
    checkpoint: Optional[str] = typer.Argument(None, help="with --resume: the checkpoint folder", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_HELP),
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer) on a recipe's prompt/completion rows."""
    from training import sft

    console.print(f"saved {sft.run(recipe, _resume_sets(set_, resume, checkpoint))}")


@train_app.command("grpo")
@cli_errors
def train_grpo(
    recipe: str = typer.Argument(..., help="recipe name (training/recipes/NAME.yaml) or a YAML path"),
    checkpoint: Optional[str] = typer.Argument(None, help="with --resume: the checkpoint folder", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_HELP),
) -> None:
    """GRPO (TRL GRPOTrainer) with the geodata reward of each row's task; multi-stage recipes run a process per stage."""
    from training import grpo

    console.print(f"saved {grpo.run(recipe, _resume_sets(set_, resume, checkpoint))}")


@train_app.command("doctor")
@cli_errors
def train_doctor() -> None:
    """What is installed for training, what each recipe needs (flash-attn, vLLM, DeepSpeed) and what is missing."""
    from training.doctor import report

    for line in report():
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@train_app.command("validate")
@cli_errors
def train_validate(
    recipe: str = typer.Argument(..., help="recipe name or a YAML path"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    no_data: bool = typer.Option(False, "--no-data", help="check the recipe only, not its dataset"),
) -> None:
    """Check a recipe, its dataset's columns and the rewards of its tasks; loads no model."""
    from training.check import check

    for line in check(recipe, set_ or [], data=not no_data):
        console.print(line, highlight=False)


@train_app.command("recipes")
@cli_errors
def train_recipes() -> None:
    """List the shipped recipes."""
    from training.recipe import list_recipes, load_recipe

    t = Table(title="training/recipes")
    for col in ("recipe", "method", "model", "dataset", "description"):
        t.add_column(col)
    for name in list_recipes():
        try:
            r = load_recipe(name)
        except GeodataError as exc:
            t.add_row(name, Text("invalid", style="red"), "", "", str(exc))
            continue
        method = "grpo" if r.grpo else "sft" if r.sft else "predict"
        t.add_row(name, method, r.model.name_or_path, r.data.dataset, r.description)
    console.print(t)


@train_app.command("tiny-model")
@cli_errors
def train_tiny_model(
    out: Path = typer.Argument(..., help="folder to write the model and processor to"),
    preset: str = typer.Option("tiny", "--preset", help="tiny (CPU smoke runs) or 3b (Qwen2.5-VL-3B shapes)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write a random-init Qwen2.5-VL with an offline processor (no download)."""
    from training.tiny import write_model

    console.print(f"wrote {write_model(out, preset=preset, seed=seed)}")


@app.command("predict")
@cli_errors
def predict(
    recipe: Optional[str] = typer.Argument(
        None, help="recipe name or a YAML path (its model, data and predict sections); "
                   "without one: --dataset and --model (or --base-url)"),
    model: Optional[str] = typer.Option(None, "--model", help="model folder or Hub id; with --base-url the served "
                                                              "model id (model.name_or_path)"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="dataset name, folder or Hub id (data.dataset)"),
    config: Optional[str] = typer.Option(None, "--config", help="config of the dataset (data.config); 'all' for every "
                                                                "config of rows, each row labelled by its config"),
    engine: Optional[str] = typer.Option(None, "--engine", help="auto | hf | vllm | openai (predict.engine)"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, "
                                                                    "http://host:8000/v1 (engine openai)"),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="environment variable holding the "
                                                                          "endpoint's key (its name, not the key)"),
    out: Optional[Path] = typer.Option(None, "--out", help="predictions Parquet (predict.output)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    """Predict over any built dataset -> Parquet in the one predictions schema (id, config, task, completion,
    pred_lat, pred_lon, answer, parsed, finish_reason, engine, model). Resumable; sharded under accelerate launch."""
    from training import predict as run_predict
    from training.recipe import adhoc_recipe

    from .errors import SpecError

    sets = list(set_ or [])
    for key, value in (("model.name_or_path", model), ("data.dataset", dataset), ("data.config", config),
                       ("predict.engine", engine), ("predict.base_url", base_url),
                       ("predict.api_key_env", api_key_env)):
        if value:
            sets.append(f"{key}={value}")
    if recipe is None:
        if not dataset:
            raise SpecError("predict: give a recipe, or --dataset NAME with --model PATH (or --base-url URL)")
        if not model and not base_url:
            raise SpecError(f"predict: --dataset {dataset}: give --model PATH (a folder or Hub id) or --base-url URL")
        rec = adhoc_recipe(dataset, sets)
        console.print(f"wrote {run_predict.run(rec, out=out)}")
        return
    console.print(f"wrote {run_predict.run(recipe, sets, out=out)}")


# -- validate / publish / report / inspect (issue 7) -----------------------------------------
# geodata validate NAME | geodata publish NAME --repo-id ORG/NAME | geodata report NAME |
# geodata inspect [NAME ...] [--hub ORG/NAME] [-c SQL]


def _issues_table(report: Any, limit: int) -> Table:
    t = Table(title=f"failing rows (first {min(limit, len(report.issues))} of {sum(report.counts.values())})")
    for col in ("check", "file", "row", "id", "problem"):
        t.add_column(col, overflow="fold")
    for i in report.issues[:limit]:
        t.add_row(i.check, i.file or "-", "-" if i.row is None else str(i.row), "-" if i.id is None else str(i.id), i.message)
    return t


@app.command("validate")
@cli_errors
def validate_cmd(
    name: str = typer.Argument(..., help="dataset name under ./datasets (or a built folder)"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    images: bool = typer.Option(True, "--images/--no-images", help="decode every image"),
    rewards: bool = typer.Option(True, "--rewards/--no-rewards", help="reward self-check of every gold completion"),
    hashes: bool = typer.Option(True, "--hashes/--no-hashes", help="compare each shard's sha256 with the manifest"),
    show: int = typer.Option(20, "--show", help="failing rows listed"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
) -> None:
    """Check schema, features, images, ids and that every gold completion scores its reward's maximum.

    Exits 1 when a check fails (and lists the failing rows).
    """
    from .validate import validate_dataset

    report = validate_dataset(name, datasets, images=images, rewards=rewards, hashes=hashes)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=1, default=str) + "\n")
    else:
        console.print(report.summary(), highlight=False, soft_wrap=True)
        if not report.ok:
            console.print(_issues_table(report, show))
    if not report.ok:
        raise typer.Exit(1)


@app.command("publish")
@cli_errors
def publish_cmd(
    name: str = typer.Argument(..., help="dataset name under ./datasets (or a built folder)"),
    repo_id: str = typer.Option(..., "--repo-id", help="the Hub dataset repo, ORG/NAME"),
    private: bool = typer.Option(False, "--private", help="create the repo private"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and assemble the folder, upload nothing"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    out: Optional[Path] = typer.Option(None, "--out", help="assembled folder (default build/hub/<name>)"),
    images: bool = typer.Option(True, "--images/--no-images", help="decode every image during validation"),
) -> None:
    """Validate, complete the card, assemble the Hub folder and upload it (commits of <= 50 files).

    The token comes from HF_TOKEN or `hf auth login`; it is never printed.
    """
    from .publish import folder_summary, publish
    from .validate import ValidationError

    try:
        res = publish(
            name, repo_id, private=private, dry_run=dry_run, datasets_dir=datasets, out=out, images=images,
            log=lambda m: err.print(m, highlight=False, markup=False),
        )
    except ValidationError as exc:
        if _debug():
            raise
        err.print(_error_line(str(exc)), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    summ = folder_summary(res.folder)
    if res.dry_run:
        console.print(f"dry run: assembled {summ['files']} files ({summ['bytes'] / 1e6:.1f} MB) in {res.folder}; "
                      f"nothing uploaded", highlight=False, soft_wrap=True)
        for rel in summ["tree"]:
            console.print(f"  {rel}", highlight=False, soft_wrap=True)
        from .dataset import Dataset

        configs = Dataset.open(res.folder).configs
        arg = "" if "default" in configs or not configs else f", '{configs[0]}'"
        console.print(f"check it: python -c \"import datasets; print(datasets.load_dataset('{res.folder}'{arg}))\"",
                      highlight=False, soft_wrap=True)
        return
    console.print(
        f"published {res.url}: {len(res.uploaded)} files uploaded in {len(res.commits)} commits, "
        f"{len(res.skipped)} already there, {len(res.deleted)} stale files deleted", highlight=False, soft_wrap=True,
    )


@app.command("report")
@cli_errors
def report_cmd(
    name: str = typer.Argument(..., help="dataset name under ./datasets (or a built folder)"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    link: bool = typer.Option(True, "--link/--no-link", help="link the figures from the dataset card"),
) -> None:
    """Write PNG figures (density map, hotspots, countries, tasks, answer lengths) and a summary."""
    from .report import make_report

    rep = make_report(name, datasets, link=link)
    for f in rep.figures:
        console.print(f"wrote {f}", highlight=False, soft_wrap=True)
    console.print(f"wrote {rep.folder / 'summary.md'}\n", highlight=False, soft_wrap=True)
    console.print(rep.summary, highlight=False, markup=False, soft_wrap=True)


@app.command("inspect")
@cli_errors
def inspect_cmd(
    names: Optional[List[str]] = typer.Argument(None, help="built datasets to open (default: all)"),
    hub: Optional[List[str]] = typer.Option(None, "--hub", help="published set: ORG/NAME, hf://datasets/ORG/NAME or a folder"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    command: Optional[List[str]] = typer.Option(None, "-c", "--command", help="run this SQL (or .command) and exit"),
    mode: str = typer.Option("table", "--mode", help="table | csv | json"),
) -> None:
    """Interactive DuckDB shell with one view per dataset and config (also over published sets)."""
    from .shell import open_connection, run_shell

    if mode not in ("table", "csv", "json"):
        raise GeodataError(f"inspect: unknown --mode '{mode}' (allowed: table, csv, json)")
    con = open_connection(datasets, published=hub or [], only=names or [])
    lines = None
    if command:
        lines = [c if c.strip().startswith(".") or c.rstrip().endswith(";") else c + ";" for c in command]
    failures = run_shell(con, lines, console=console, mode=mode)
    if failures and (command or not sys.stdin.isatty()):
        raise typer.Exit(1)


# -- evaluation (issue 3, MP16-Hard-200K / geolocation): geodata eval -------------------
@app.command("eval")
@cli_errors
def eval_cmd(
    predictions: Path = typer.Argument(..., help="predictions .parquet/.csv (id + pred_lat/pred_lon or completion)"),
    truth: str = typer.Option(..., "--truth", help="built dataset (folder or name) or truth CSV (IMG_ID, LAT, LON)"),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON report (default: PREDICTIONS.eval.json)"),
    unknown_ids: str = typer.Option("drop", "--unknown-ids", help="prediction ids not in the truth: drop (counted) | error"),
    no_geocode: bool = typer.Option(False, "--no-geocode", help="skip country/admin1/city accuracy"),
    by: Optional[str] = typer.Option(None, "--by", help="also break the metrics down by source | split"),
    compare: Optional[str] = typer.Option(None, "--compare", help="print published results beside yours (e.g. geo-r)"),
) -> None:
    """Score predictions against a built dataset, task by task (geolocation, VQA, boxes, captions ...)."""
    from .eval_tasks import compare_rows, evaluate_task_files, format_compare, is_geolocation_only, reference_table
    from .evaluate import evaluate_files, format_report

    if unknown_ids not in ("drop", "error"):
        raise GeodataError(f"eval: --unknown-ids must be drop or error, got '{unknown_ids}'")
    from ._ownership import MANIFEST_MARKER, check_out_file

    target = out if out is not None else predictions.with_name(predictions.name + ".eval.json")
    check_out_file(target)  # never overwrite a file geodata did not write
    if by is None and is_geolocation_only(truth):
        res = evaluate_files(predictions, truth, unknown_ids=unknown_ids, geocode=not no_geocode)  # type: ignore[arg-type]
        text = format_report(res)
        if compare:
            res["compare"] = compare_rows(res, reference_table(compare), compare)
            text += "\n" + format_compare(res["compare"])
    else:
        from .eval_tasks import format_task_report

        rep = evaluate_task_files(predictions, truth, by=by, compare=compare, unknown_ids=unknown_ids,
                                  geocode=not no_geocode)
        res, text = rep.model_dump(), format_task_report(rep)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({MANIFEST_MARKER[0]: MANIFEST_MARKER[1], **res}, indent=2) + "\n")
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    console.print(f"wrote {target}", highlight=False, soft_wrap=True)


# -- source check (issue 11, MP-16 helper): geodata check SOURCE [--root DIR] [--deep] -----
@app.command("check")
@cli_errors
def check_cmd(
    source_name: str = typer.Argument(..., metavar="SOURCE", help="a registered source (geodata catalog lists them)"),
    root: Optional[Path] = typer.Option(None, "--root", help="the source's root (default: $<SOURCE>_ROOT)"),
    deep: bool = typer.Option(False, "--deep", help="also read and decode every image"),
    param: Optional[List[str]] = typer.Option(None, "--param", help="reader parameter KEY=VALUE (e.g. images=folder)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Before a build: detected layout, rows and columns, images found/missing, splits, would-be drops."""
    import yaml

    from .check import check_source, format_check

    params = {}
    for item in param or []:
        key, eq, value = item.partition("=")
        if not eq or not key or value == "":
            raise GeodataError(f"check: --param '{item}' is not KEY=VALUE")
        params[key] = yaml.safe_load(value)
    rep = check_source(source_name, root, deep=deep, params=params)
    typer.echo(json.dumps(rep, indent=1, default=str) if as_json else format_check(rep))
    if rep["rows_after_drops"] == 0:
        raise typer.Exit(1)
