"""A long-lived ``geodata inspect`` / :func:`geodata.sql.connect` keeps working after a rebuild
replaces the shards (the views name globs, which DuckDB resolves at query time)."""

from __future__ import annotations

from geodata.engine import build
from geodata.shell import open_connection, run_shell
from geodata.sql import connect

PIPE = "mp16-rand-500k"


def test_views_survive_a_rebuild_that_changes_the_shards(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    ds = tmp_path / "datasets"
    build(PIPE, sets=["sample.n=30"], out=ds / PIPE)
    con = connect(ds)
    shell = open_connection(ds)
    assert con.execute("SELECT count(*) FROM mp16_rand_500k").fetchall() == [(30,)]
    before = sorted(p.name for p in (ds / PIPE / "data").glob("*.parquet"))
    # more rows in several small shards: every file name changes
    res = build(PIPE, sets=["sample.n=90", "output.shard_max_mb=0.002", "output.row_group_rows=10"], out=ds / PIPE)
    after = sorted(p.name for p in (ds / PIPE / "data").glob("*.parquet"))
    assert len(after) > 1 and not set(before) & set(after)
    assert con.execute("SELECT count(*) FROM mp16_rand_500k").fetchall() == [(res.rows,)]
    assert run_shell(shell, ["SELECT count(*) AS n FROM mp16_rand_500k;"], mode="csv") == 0
