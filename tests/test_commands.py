"""Commands as thin shells over the library: one SQL printer, the catalog's folder variable, samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataset_fixture import make_dataset
from geodata.cli import app
from geodata.errors import GeodataError

runner = CliRunner()
QUERY = "SELECT id, prompt FROM mp16_hard_200k ORDER BY id LIMIT 2"


def test_sql_and_inspect_print_nested_columns_alike(tmp_path: Path) -> None:
    datasets = tmp_path / "datasets"
    make_dataset(datasets, name="mp16-hard-200k", n=4, shards=1)
    sql = runner.invoke(app, ["sql", QUERY, "--datasets", str(datasets), "--format", "csv"])
    shell = runner.invoke(app, ["inspect", "--datasets", str(datasets), "--mode", "csv", "-c", QUERY])
    assert sql.exit_code == 0 and shell.exit_code == 0, (sql.output, shell.output)
    rows = [ln for ln in sql.output.splitlines() if ln]
    assert rows[0] == "id,prompt" and '"[{""role"": ""' in rows[1]  # a nested column is JSON text
    assert shell.output.splitlines()[-len(rows):] == rows
    js = runner.invoke(app, ["sql", QUERY, "--datasets", str(datasets), "--format", "json"])
    jshell = runner.invoke(app, ["inspect", "--datasets", str(datasets), "--mode", "json", "-c", QUERY])
    assert js.exit_code == 0 and js.output.strip() and js.output.strip() in jshell.output


def test_catalog_honours_geodata_catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = tmp_path / "my-catalogs"
    cat.mkdir()
    (cat / "mysrc.yaml").write_text("name: mysrc\ntitle: My source\nenv: MYSRC_ROOT\nlicense: cc0\n")
    monkeypatch.setenv("GEODATA_CATALOGS", str(cat))
    res = runner.invoke(app, ["catalog", "mysrc"])
    assert res.exit_code == 0 and "title: My source" in res.output, res.output


def test_sample_targets_are_checked_before_any_is_written(tmp_path: Path) -> None:
    from geodata.samples import sample_targets

    names = [info.name for info, _ in sample_targets(out=tmp_path / "s")]
    assert names[0] == "mp16" and "predictions" in names
    with pytest.raises(GeodataError, match="--only nope: no such sample"):
        sample_targets(["nope"])
    planted = tmp_path / "s" / "cvusa"
    planted.mkdir(parents=True)
    (planted / "thesis.tex").write_text("mine")
    with pytest.raises(GeodataError, match="cvusa"):
        sample_targets(["mp16", "cvusa"], out=tmp_path / "s")
    assert not (tmp_path / "s" / "mp16").exists() and (planted / "thesis.tex").read_text() == "mine"
