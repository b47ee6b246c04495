"""SQL over published datasets, and the interactive DuckDB shell behind ``make inspect``.

Published sets
--------------
``register_published(con, "ORG/NAME")`` adds views over a dataset on the Hub, read in place by
DuckDB (``hf://datasets/ORG/NAME/**/*.parquet``), named like the local ones
(:func:`geodata.sql.view_name`): the default config (``data/``) is ``<name>``, a further
config ``hotspots/`` is ``<name>_hotspots``. The same call takes a local folder holding that
layout (a ``geodata publish --dry-run`` output or a ``huggingface-cli download``), which is
how the tests run offline. Reading ``hf://`` needs DuckDB's ``httpfs`` extension (auto-loaded
when online) and, for a private repo, a token: ``HF_TOKEN`` or the ``hf auth login`` cache is
handed to DuckDB as a ``huggingface`` secret (never printed).

The shell
---------
The ``duckdb`` Python package ships no shell binary, so :func:`run_shell` is a small REPL:
statements end with ``;`` (and may span lines); results print as rich tables (first
``.limit`` rows, default 40); dot commands: ``.tables``, ``.schema VIEW``, ``.limit N``,
``.mode table|csv|json``, ``.help``, ``.quit``. Line editing and history come from
``readline`` where the platform has it. Fed from a pipe, it runs the statements and exits.

Examples
--------
>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE VIEW t AS SELECT 1 AS x")
>>> run_shell(con, [".tables", "SELECT x + 1 AS y FROM t;"], mode="csv")  # doctest: +NORMALIZE_WHITESPACE
t
y
2
0
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import GeodataError

__all__ = ["hub_base", "published_views", "register_published", "open_connection", "run_shell"]

_HF = re.compile(r"^hf://datasets/([^/]+/[^/@]+)(@[^/]+)?(/.*)?$")


def hub_base(ref: str | Path) -> str:
    """The root of a published set: ``ORG/NAME`` → ``hf://datasets/ORG/NAME``; a path stays a path.

    A trailing ``/**/*.parquet`` (the form the docs show) is dropped.

    Examples
    --------
    >>> hub_base("my-org/mp16-rand-500k")
    'hf://datasets/my-org/mp16-rand-500k'
    >>> hub_base("hf://datasets/my-org/mp16-rand-500k/**/*.parquet")
    'hf://datasets/my-org/mp16-rand-500k'
    """
    s = str(ref).rstrip("/")
    s = re.sub(r"/\*\*(/\*\.parquet)?$", "", s)
    if s.startswith("hf://"):
        if not _HF.match(s):
            raise GeodataError(f"published set {ref!r}: expected hf://datasets/ORG/NAME")
        return s
    p = Path(s)
    if p.exists():
        if not p.is_dir():
            raise GeodataError(f"published set {ref!r}: not a folder")
        return str(p.resolve())
    from .publish import REPO_ID_RE

    if REPO_ID_RE.fullmatch(s):
        return f"hf://datasets/{s}"
    raise GeodataError(f"published set {ref!r}: neither ORG/NAME, hf://datasets/ORG/NAME nor an existing folder")


def _prepare_hf(con: Any, base: str) -> None:
    if not base.startswith("hf://"):
        return
    import duckdb

    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        try:
            con.execute("INSTALL httpfs")
            con.execute("LOAD httpfs")
        except duckdb.Error as exc:
            raise GeodataError(
                f"{base}: duckdb's httpfs extension (needed for hf:// paths) could not be loaded: "
                f"{str(exc).splitlines()[0].lower()}"
            ) from None
    from huggingface_hub import get_token

    token = get_token()
    if token:
        quoted = token.replace("'", "''")
        con.execute(f"CREATE OR REPLACE SECRET geodata_hf (TYPE huggingface, TOKEN '{quoted}')")


def published_views(con: Any, ref: str | Path, name: str | None = None) -> dict[str, list[str]]:
    """View name → parquet globs for one published set (one view per config folder)."""
    import duckdb

    from .sql import view_name

    base = hub_base(ref)
    _prepare_hf(con, base)
    try:
        files = [r[0] for r in con.execute("SELECT file FROM glob(?)", [f"{base}/**/*.parquet"]).fetchall()]
    except duckdb.Error as exc:
        raise GeodataError(f"{base}: cannot list parquet files: {str(exc).splitlines()[0].lower()}") from None
    if not files:
        raise GeodataError(f"{base}: no parquet files under it (is it a published geodata dataset?)")
    label = name or base.rstrip("/").split("/")[-1]
    prefix = len(base.rstrip("/")) + 1
    folders = sorted({f.replace("\\", "/")[prefix:].split("/")[0] for f in files if "/" in f.replace("\\", "/")[prefix:]})
    views: dict[str, list[str]] = {}
    for folder in folders:
        views[view_name(label) if folder == "data" else view_name(label, folder)] = [f"{base}/{folder}/**/*.parquet"]
    if "data" not in folders:  # one config per task (eo-instruct): a view over all of them too
        rows = [f"{base}/{d}/**/*.parquet" for d in folders if d != "hotspots"]
        if rows:
            views[view_name(label)] = rows
    return views


def register_published(con: Any, ref: str | Path, name: str | None = None) -> list[str]:
    """Create the views of one published set on ``con``; return their names.

    Examples
    --------
    >>> import duckdb                                                  # doctest: +SKIP
    >>> con = duckdb.connect()                                         # doctest: +SKIP
    >>> register_published(con, "my-org/mp16-hard-200k")              # doctest: +SKIP
    ['mp16_hard_200k', 'mp16_hard_200k_hotspots']
    >>> con.sql("SELECT count(*) FROM mp16_hard_200k").fetchone()      # doctest: +SKIP
    (200000,)
    """
    import duckdb

    from .sql import create_view

    views = published_views(con, ref, name)
    for view, globs in views.items():
        src = "[" + ", ".join("'" + g.replace("'", "''") + "'" for g in globs) + "]"
        try:
            create_view(con, view, f"SELECT * FROM read_parquet({src}, union_by_name = true)", hub_base(ref))
        except duckdb.Error as exc:
            raise GeodataError(f"{ref}: cannot read {globs[0]}: {str(exc).splitlines()[0].lower()}") from None
    return list(views)


def open_connection(
    datasets_dir: str | Path | None = None, published: Iterable[str | Path] = (), only: Iterable[str] = ()
) -> Any:
    """A DuckDB connection with the views of every built dataset plus the published sets given.

    ``only`` (dataset names) keeps the views of those datasets only, so ``make inspect
    DATASET=x`` opens a shell focused on ``x``.
    """
    from .dataset import datasets_dir as default_dir
    from .sql import connect, view_name

    con = connect(datasets_dir if datasets_dir is not None else default_dir())
    keep = [view_name(n) for n in only]
    if keep:
        views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        missing = [n for n, v in zip(only, keep) if not any(x == v or x.startswith(v + "_") for x in views)]
        if missing:
            raise GeodataError(
                f"no built dataset {', '.join(map(repr, missing))} (views: {', '.join(sorted(views)) or 'none'}; "
                "run `geodata build NAME` first, or pass --hub ORG/NAME)"
            )
        for v in views:
            if not any(v == k or v.startswith(k + "_") for k in keep):
                con.execute(f"DROP VIEW {v}")
    for ref in published:
        register_published(con, ref)
    return con


# -- the REPL ----------------------------------------------------------------------------------------

HELP = """statements end with ';' and may span lines. dot commands:
  .tables            list the views (one per dataset and config)
  .schema VIEW       columns and types of a view
  .limit N           rows shown per result (now {limit})
  .mode MODE         table | csv | json
  .help              this text
  .quit              leave (or Ctrl-D)"""


def _print_result(con: Any, rel: Any, console: Any, limit: int, mode: str) -> None:
    from .sql import print_result

    cols = [d[0] for d in rel.description]
    rows = rel.fetchmany(limit + 1)
    more = len(rows) > limit
    print_result(console, cols, rows[:limit], mode,
                 note=f"(more rows: first {limit} shown; .limit N shows more)" if more else None)


def _statements(lines: Iterable[str], prompt: Any) -> Iterator[str]:
    """Yield dot commands and complete ``;``-terminated statements from ``lines``."""
    buf: list[str] = []
    it = iter(lines)
    while True:
        prompt(bool(buf))
        try:
            line = next(it)
        except StopIteration:
            if "".join(buf).strip():
                yield "\n".join(buf)
            return
        line = line.rstrip("\n")
        if not buf and line.strip().startswith("."):
            yield line.strip()
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(buf)
            buf = []


def _terminal_lines(console: Any, state: dict[str, bool]) -> Iterator[str]:
    """Lines typed at the terminal; the prompt shows whether a statement is still open."""
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:  # pragma: no cover - platform without readline
        pass
    while True:
        try:
            yield input("   ...> " if state["more"] else "geodata> ")
        except EOFError:
            console.print()
            return
        except KeyboardInterrupt:
            console.print("^C")


def run_shell(
    con: Any, lines: Iterable[str] | None = None, console: Any = None, limit: int = 40, mode: str = "table"
) -> int:
    """Read statements from ``lines`` (default: the terminal, or stdin when piped) and print results.

    Returns the number of statements that failed (the CLI exits non-zero when it is not 0 and the
    input was piped).
    """
    import duckdb
    from rich.console import Console

    console = console or Console(markup=False)
    state = {"more": False}
    if lines is None:
        if sys.stdin.isatty():
            views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
            console.print(f"geodata sql shell (DuckDB {duckdb.__version__}). views: {', '.join(views) or 'none'}.\n"
                          "End statements with ';'. .help for commands, .quit to leave.", highlight=False, markup=False)
            lines = _terminal_lines(console, state)
        else:
            lines = sys.stdin

    def prompt(more: bool) -> None:
        state["more"] = more

    failures = 0
    for stmt in _statements(lines, prompt):
        if stmt.startswith("."):
            cmd, _, arg = stmt.partition(" ")
            arg = arg.strip().rstrip(";")
            if cmd in (".quit", ".exit", ".q"):
                break
            if cmd == ".help":
                console.print(HELP.format(limit=limit), highlight=False, markup=False)
            elif cmd == ".tables":
                for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall():
                    console.print(v, highlight=False, markup=False)
            elif cmd == ".schema" and arg:
                try:
                    _print_result(con, con.execute(f"DESCRIBE {arg}"), console, 1000, mode)
                except duckdb.Error as exc:
                    failures += 1
                    console.print(f"error: {str(exc).splitlines()[0]}", highlight=False, markup=False)
            elif cmd == ".limit" and arg.isdigit():
                limit = max(1, int(arg))
            elif cmd == ".mode" and arg in ("table", "csv", "json"):
                mode = arg
            else:
                failures += 1
                console.print(f"error: unknown or incomplete command {stmt!r} (.help lists them)", highlight=False, markup=False)
            continue
        try:
            rel = con.execute(stmt)
        except duckdb.Error as exc:
            failures += 1
            console.print(f"error: {str(exc).splitlines()[0]}", highlight=False, markup=False)
            continue
        if rel.description:
            _print_result(con, rel, console, limit, mode)
    return failures
