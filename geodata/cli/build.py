"""``geodata build``, ``steps`` and ``demo``: run pipelines and list what they can use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table
from rich.text import Text

from .app import app, cli_errors, console, err


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
    from ..engine import build as _build

    res = _build(name, sets=set_ or [], out=out, force=force, progress=err.is_terminal,
                 runner=runner, workers=workers)
    _print_build(res)


@app.command()
@cli_errors
def steps() -> None:
    """List the registered steps, sources, rewards and tasks (with the benchmark code each follows)."""
    from ..registry import REWARDS, SOURCES, STEPS, TASKS, _load_all

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
    t = Table(title="tasks (geodata eval scorers)")
    t.add_column("task")
    t.add_column("scored as")
    t.add_column("reference code")
    for n, info in sorted(TASKS.items()):
        t.add_row(n, info.doc, info.reference)
    console.print(t)


@app.command()
@cli_errors
def demo(
    force: bool = typer.Option(False, "--force", help="rebuild every dataset"),
) -> None:
    """Write the samples and build every pipeline at sample scale; print a summary."""
    from ..engine import build as _build
    from ..dataset import datasets_dir
    from ..paths import pipeline_dirs

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
