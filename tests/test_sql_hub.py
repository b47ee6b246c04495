"""SQL over published sets (offline, on local folders in the Hub layout) and the inspect shell."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dataset_fixture import FEATURES, make_dataset, make_rows, write_dataset
from geodata.cli import app
from geodata.errors import GeodataError
from geodata.publish import assemble
from geodata.shell import hub_base, open_connection, published_views, register_published, run_shell


@pytest.fixture()
def published(tmp_path: Path) -> Path:
    """What the Hub holds for a Hard-200K-like set (a publish --dry-run folder)."""
    ds = make_dataset(tmp_path / "datasets", name="mp16-hard-200k", n=12, shards=2, hotspots=True)
    return assemble(ds, out=tmp_path / "hub" / "mp16-hard-200k")


def test_hub_base_forms(tmp_path: Path) -> None:
    assert hub_base("org/set") == "hf://datasets/org/set"
    assert hub_base("hf://datasets/org/set/**/*.parquet") == "hf://datasets/org/set"
    assert hub_base("hf://datasets/org/set/") == "hf://datasets/org/set"
    assert hub_base(tmp_path) == str(tmp_path.resolve())
    for bad in ("not a repo", "hf://models/org/x", "a/b/c"):
        with pytest.raises(GeodataError):
            hub_base(bad)


def test_views_over_a_published_set(published: Path) -> None:
    con = duckdb.connect()
    assert register_published(con, published) == ["mp16_hard_200k", "mp16_hard_200k_hotspots"]
    assert con.execute("SELECT count(*) FROM mp16_hard_200k").fetchone() == (12,)
    assert con.execute("SELECT count(*) FROM mp16_hard_200k_hotspots").fetchone() == (2,)
    top = con.execute("SELECT country, count(*) n FROM mp16_hard_200k GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
    assert top == ("France", 3)
    # a name other than the folder's
    assert register_published(con, published, name="hard") == ["hard", "hard_hotspots"]


def test_one_config_per_task_gets_a_combined_view(tmp_path: Path) -> None:
    rows = make_rows(6)
    for r in rows[3:]:
        r["task"] = "other_task"
    folder = write_dataset(tmp_path, "eo-instruct", {"scene_cls": {"train": [rows[:3]]}, "vqa": {"train": [rows[3:]]}},
                           {"scene_cls": FEATURES, "vqa": FEATURES})
    views = published_views(duckdb.connect(), folder)
    assert sorted(views) == ["eo_instruct", "eo_instruct_scene_cls", "eo_instruct_vqa"]
    con = duckdb.connect()
    register_published(con, folder)
    assert con.execute("SELECT count(*) FROM eo_instruct").fetchone() == (6,)
    assert con.execute("SELECT count(*) FROM eo_instruct_vqa").fetchone() == (3,)


def test_folder_without_parquet_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GeodataError, match="no parquet files"):
        register_published(duckdb.connect(), tmp_path)


def test_open_connection_focuses_on_one_dataset(tmp_path: Path, published: Path) -> None:
    datasets = tmp_path / "datasets"
    make_dataset(datasets, name="other-set", n=3, shards=1)
    con = open_connection(datasets, only=["mp16-hard-200k"])
    views = sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
    assert views == ["mp16_hard_200k", "mp16_hard_200k_hotspots"]
    con = open_connection(datasets, published=[published])  # built and published side by side
    assert con.execute("SELECT count(*) FROM other_set").fetchone() == (3,)
    with pytest.raises(GeodataError, match="no built dataset 'nope'"):
        open_connection(datasets, only=["nope"])


def _shell(con: duckdb.DuckDBPyConnection, lines: list[str], mode: str = "csv") -> tuple[int, str]:
    buf = io.StringIO()
    n = run_shell(con, lines, console=Console(file=buf, width=200), mode=mode)
    return n, buf.getvalue()


def test_shell_statements_and_dot_commands(published: Path) -> None:
    con = duckdb.connect()
    register_published(con, published)
    fails, out = _shell(con, [
        ".tables",
        "SELECT country,",
        "       count(*) AS n",
        "FROM mp16_hard_200k GROUP BY 1 ORDER BY 2 DESC, 1;",
        ".limit 2",
        "SELECT id FROM mp16_hard_200k ORDER BY id;",
        ".schema mp16_hard_200k_hotspots",
        "SELECT * FROM no_such_view;",
        ".bogus",
        ".quit",
        "SELECT 'never reached';",
    ])
    assert fails == 2
    lines = out.splitlines()
    assert lines[:2] == ["mp16_hard_200k", "mp16_hard_200k_hotspots"]
    assert "country,n" in lines and "France,3" in lines and "Brazil,2" in lines
    assert "row-00000" in out and "row-00001" in out and "row-00002" not in out and "first 2 shown" in out
    assert "column_name,column_type" in out and "lat,DOUBLE" in out
    assert "error: Catalog Error" in out and "unknown or incomplete command '.bogus'" in out
    assert "never reached" not in out


def test_shell_table_mode_shortens_images(published: Path) -> None:
    con = duckdb.connect()
    register_published(con, published)
    fails, out = _shell(con, ["SELECT id, images FROM mp16_hard_200k ORDER BY id LIMIT 1;"], mode="table")
    assert fails == 0 and "row-00000" in out and "<1 image>" in out


def test_cli_inspect(tmp_path: Path, published: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["inspect", "--datasets", str(tmp_path / "none"), "--hub", str(published),
                              "--mode", "csv", "-c", "SELECT count(*) AS n FROM mp16_hard_200k"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-2:] == ["n", "12"]
    piped = runner.invoke(app, ["inspect", "--datasets", str(tmp_path / "none"), "--hub", str(published), "--mode", "csv"],
                          input="SELECT count(*) AS k\nFROM mp16_hard_200k_hotspots;\n")
    assert piped.exit_code == 0 and piped.output.splitlines()[-2:] == ["k", "2"]
    bad = runner.invoke(app, ["inspect", "--datasets", str(tmp_path / "none"), "-c", "SELECT * FROM nothing"])
    assert bad.exit_code == 1 and "error:" in bad.output
