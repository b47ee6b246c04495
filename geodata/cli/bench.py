"""``geodata bench list``: the benchmark pipelines (``pipelines/bench/``), where each expects its release, who reports it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .app import app

__all__ = ["bench_app", "list_benchmarks"]

bench_app = typer.Typer(help="Benchmarks as datasets (pipelines/bench/): list them, build them with `geodata build`.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def list_benchmarks() -> list[dict[str, Any]]:
    """One entry per benchmark pipeline: pipeline, benchmark, env variables, reported_by, paper, file.

    The first pipelines folder that holds a name wins (as for ``geodata build``).
    """
    from ..paths import pipeline_dirs
    from ..registry import get_source
    from ..spec import BENCH_DIR, read_mapping

    seen: dict[str, dict[str, Any]] = {}
    for d in pipeline_dirs():
        for f in sorted((d / BENCH_DIR).glob("*.yaml")):
            raw = read_mapping(f, "spec must be a mapping with name, sources and steps")
            name = str(raw.get("name") or f.stem)
            if name in seen or not isinstance(raw.get("benchmark"), dict):
                continue
            envs = []
            for src in (raw.get("sources") or {}).values():
                envs.append(get_source(src["reader"]).env)
            b = raw["benchmark"]
            seen[name] = {"pipeline": name, "benchmark": b.get("name"), "env": list(dict.fromkeys(envs)),
                          "reported_by": list(b.get("reported_by") or []), "paper": b.get("paper"),
                          "file": Path(f)}
    return sorted(seen.values(), key=lambda e: (e["reported_by"], e["pipeline"]))


@bench_app.command("list")
def bench_list() -> None:
    """Which benchmarks exist, where each expects its release (env variable), which method reports it."""
    from rich.console import Console
    from rich.table import Table

    from ..paths import source_root

    t = Table(title="benchmarks (geodata build NAME; unset variables use the embedded sample)")
    for col in ("pipeline", "benchmark", "release (env)", "reported by", "paper"):
        t.add_column(col, overflow="fold")
    for e in list_benchmarks():
        env = ", ".join(f"{v}={source_root(v)}" if source_root(v) else f"{v} (unset)" for v in e["env"])
        t.add_row(e["pipeline"], e["benchmark"], env, ", ".join(e["reported_by"]), e["paper"])
    Console().print(t)
