"""A paper's published tables with your run's row inserted where it ranks (``geodata eval --compare``).

The numbers live in ``geodata/data/reference/<paper>.csv`` (``table, benchmark, task, method,
type, metric, value, source``: one published number per row, a fraction, with the paper and
table it comes from); ``papers.yaml`` beside it says, per paper, what it holds and what public
material does not give. This module reads an eval report (the JSON ``geodata eval`` writes, or
its dict) only for its per-threshold accuracies, so it does not depend on how they were scored:

* the geolocation report of :mod:`geodata.evaluate` (``acc_km: {"1": 0.18, "25": ...}``), or
* a per-task report (``tasks: {"geolocation": {"metrics": {"acc@1km": ...}}}``).

Rows are ranked by the first metric column of the table, ties (and a missing number, printed
``-``, which ranks below every number) broken by the next column, and so on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import SourceError

__all__ = ["Reference", "load_reference", "papers", "ours_metrics", "benchmark_of", "compare", "format_comparison"]

OURS = "this run"


@dataclass
class Reference:
    """One paper's published numbers: ``rows`` as read (value a float), ``info`` from papers.yaml."""

    paper: str
    rows: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(r["benchmark"] for r in self.rows))


def _base():  # noqa: ANN202 - importlib.resources Traversable
    return resources.files("geodata").joinpath("data/reference")


def papers() -> dict[str, dict[str, Any]]:
    """``papers.yaml``: per paper its title, where it appeared, what is stored and what is missing."""
    return yaml.safe_load(_base().joinpath("papers.yaml").read_text())


def load_reference(paper: str) -> Reference:
    """The published numbers of ``paper`` (``geo-r``); a paper without public numbers is an error saying so.

    Examples
    --------
    >>> ref = load_reference("geo-r")
    >>> [(r["method"], r["metric"], r["value"]) for r in ref.rows[:2]]
    [('Geo-R', 'acc@1km', 0.181), ('Geo-R', 'acc@25km', 0.4153)]
    """
    known = papers()
    f = _base().joinpath(f"{paper}.csv")
    if not f.is_file():
        if paper in known:
            raise SourceError(f"eval: --compare {paper}: no published number is public ({known[paper]['missing'].strip()}); "
                              f"papers with numbers: {', '.join(p for p in known if _base().joinpath(f'{p}.csv').is_file())}")
        raise SourceError(f"eval: --compare {paper}: unknown paper (known: {', '.join(sorted(known))})")
    rows = list(csv.DictReader(f.read_text().splitlines()))
    for r in rows:
        r["value"] = float(r["value"])
    return Reference(paper, rows, known.get(paper, {}))


def ours_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``{"acc@1km": 0.18, ...}`` from an eval report (geolocation or per-task form)."""
    out: dict[str, float] = {}
    for k, v in (report.get("acc_km") or {}).items():
        if v is not None:
            out[f"acc@{float(k):g}km"] = float(v)
    geo = ((report.get("tasks") or {}).get("geolocation") or {})
    for k, v in (geo.get("metrics") or {}).items():
        if v is not None and k.startswith("acc@"):
            out.setdefault(k, float(v))
    return out


def benchmark_of(truth: str | Path | None, benchmarks: list[str]) -> str | None:
    """The benchmark a truth names: a built dataset's name (``bench-im2gps3k``, also when built
    into another folder), else the file or folder name (``im2gps3k_places365.csv``); None if unclear."""
    if truth is None:
        return None
    names = [Path(str(truth).rstrip("/")).name.lower()]
    if Path(truth).is_dir():
        from .dataset import Dataset, DatasetError

        try:
            names.insert(0, Dataset.open(truth).name.lower())
        except DatasetError:
            pass
    for name in names:
        hits = [b for b in benchmarks if b in name]
        if len(hits) == 1:
            return hits[0]
    return None


def _key(values: list[float | None]) -> tuple[float, ...]:
    return tuple(-1.0 if v is None else v for v in values)


def compare(report: dict[str, Any], paper: str, truth: str | Path | None = None) -> dict[str, Any]:
    """The paper's tables for the truth's benchmark, each with our row inserted where it ranks.

    Returns ``{"paper", "benchmark", "tables": [{"table", "benchmark", "source", "metrics",
    "rows": [{"rank", "method", "type", "values", "ours"}]}], "rows": [...], "notes"}``;
    ``rows`` are the reference rows with ``ours`` (our value of the same metric, or null).
    """
    ref = load_reference(paper)
    ours = ours_metrics(report)
    bench = benchmark_of(truth if truth is not None else report.get("truth"), ref.benchmarks())
    notes = []
    if bench is None:
        notes.append(f"the truth's benchmark is not one of {', '.join(ref.benchmarks())}: every table is printed; "
                     "compare only with the benchmark your truth is")
    chosen = [r for r in ref.rows if bench is None or r["benchmark"] == bench]
    tables = []
    for tname in dict.fromkeys(r["table"] for r in chosen):
        trows = [r for r in chosen if r["table"] == tname]
        metrics = list(dict.fromkeys(r["metric"] for r in trows))
        methods: dict[str, dict[str, Any]] = {}
        for r in trows:
            m = methods.setdefault(r["method"], {"method": r["method"], "type": r["type"], "values": {}, "ours": False})
            m["values"][r["metric"]] = r["value"]
        lines = [{**m, "values": [m["values"].get(k) for k in metrics]} for m in methods.values()]
        if any(k in ours for k in metrics):
            lines.append({"method": OURS, "type": "", "values": [ours.get(k) for k in metrics], "ours": True})
        lines.sort(key=lambda m: _key(m["values"]), reverse=True)  # stable: the paper's order among ties
        for i, m in enumerate(lines, 1):
            m["rank"] = i
        tables.append({"table": tname, "benchmark": trows[0]["benchmark"], "source": trows[0]["source"],
                       "metrics": metrics, "rows": lines})
    flat = [{"paper": paper, **r, "ours": ours.get(r["metric"])} for r in chosen]
    return {"paper": paper, "benchmark": bench, "tables": tables, "rows": flat, "notes": notes,
            "missing": (ref.info.get("missing") or "").strip()}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def format_comparison(res: dict[str, Any]) -> str:
    """Plain-text tables (accuracy in %), our row marked ``>``."""
    out = [f"published results: {res['paper']} (accuracy %, ranked by the first column, then the next)"]
    for t in res["tables"]:
        heads = [m.removeprefix("acc@") for m in t["metrics"]]
        width = max(len(OURS), *(len(r["method"]) for r in t["rows"]))
        out += ["", f"{t['benchmark'].upper()} - {t['table']}",
                f"    {'#':>2}  {'method':<{width}}  {'type':<14}" + "".join(f"{h:>8}" for h in heads)]
        for r in t["rows"]:
            mark = ">" if r["ours"] else " "
            out.append(f"  {mark} {r['rank']:>2}  {r['method']:<{width}}  {r['type']:<14}" + "".join(f"{_pct(v):>8}" for v in r["values"]))
        out.append(f"    source: {t['source']}")
    if res.get("missing"):
        out += ["", f"not public: {res['missing']}"]
    out += [f"note: {n}" for n in res["notes"]]
    return "\n".join(out)
