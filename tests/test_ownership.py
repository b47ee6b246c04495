"""geodata never deletes, moves or overwrites a file it did not write.

For every command that takes ``--out`` (build, publish --dry-run, sample-data) user files are
planted around and inside the target (with sub-folders) and must be byte- and mtime-identical
after a success, an error and an interruption (raised inside a step or writer).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataset_fixture import make_dataset
from geodata.dataset import ownership as own
from geodata.cli import app

PIPE = "mp16-rand-500k"
runner = CliRunner()


def plant(folder: Path) -> dict[str, tuple[bytes, int]]:
    """User files in ``folder`` (with a sub-folder and a hidden file); returns their snapshot."""
    (folder / "thesis" / "chapters").mkdir(parents=True, exist_ok=True)
    (folder / "thesis" / "chapters" / "ch1.tex").write_text("months of work\n")
    (folder / "downloads.csv").write_text("IMG_ID,LAT,LON\n")
    (folder / ".hidden").write_text("x")
    (folder / "empty-dir").mkdir(exist_ok=True)
    mine = ("thesis", "downloads.csv", ".hidden", "empty-dir")
    return {k: v for k, v in snapshot(folder).items() if k.split("/")[0] in mine}


def snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[bytes, int]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        out[rel] = (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else (b"<dir>", 0)
    return out


def cli(*argv: str):
    return runner.invoke(app, list(argv))


@pytest.fixture()
def mp16(mp16_small, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    return mp16_small / "folder"


# -- build --out ----------------------------------------------------------------------------------


def test_build_refuses_a_user_folder_and_touches_nothing(mp16, tmp_path):
    user = tmp_path / "work"
    user.mkdir()
    before = plant(user)
    res = cli("build", PIPE, "--set", "sample.n=10", "--out", str(user))
    assert res.exit_code == 2
    assert res.output.count("\n") == 1, res.output
    assert f"--out {user}: a non-empty folder that geodata did not write" in res.output
    assert snapshot(user) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"], "no temp folder may be left"


def test_build_refuses_a_file(mp16, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    before = snapshot(tmp_path)
    res = cli("build", PIPE, "--set", "sample.n=10", "--out", str(f))
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("target", [".", "/", "HOME", "PARENT", "CWD"])
def test_build_refuses_protected_places(mp16, tmp_path, monkeypatch, target):
    home = tmp_path / "home"
    cwd = home / "project" / "sub"
    cwd.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    plant(home)
    before = snapshot(home)
    out = {".": ".", "/": "/", "HOME": str(home), "PARENT": str(home / "project"), "CWD": str(cwd)}[target]
    res = cli("build", PIPE, "--set", "sample.n=10", "--out", out)
    assert res.exit_code == 2, res.output
    assert f"--out {out}: is " in res.output and "geodata never writes a dataset there" in res.output
    assert snapshot(home) == before


def test_build_success_keeps_files_around_and_inside(mp16, tmp_path):
    before_around = plant(tmp_path)
    out = tmp_path / "ds"
    assert cli("build", PIPE, "--set", "sample.n=10", "--out", str(out)).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["written_by"] == "geodata"
    # the user adds files inside the dataset folder; a rebuild keeps them
    inside = plant(out)
    assert cli("build", PIPE, "--set", "sample.n=12", "--out", str(out)).exit_code == 0
    steps = json.loads((out / "manifest.json").read_text())["spec"]["steps"]
    assert [s["n"] for s in steps if s["step"] == "sample"] == [12]
    for rel, (data, mtime) in inside.items():
        p = out / rel
        assert p.exists(), rel
        if p.is_file():
            assert (p.read_bytes(), p.stat().st_mtime_ns) == (data, mtime), rel
    assert snapshot(tmp_path, skip=("ds",)) == before_around
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")], "no temp or old folder left"


def test_a_manifest_listing_paths_outside_its_folder_never_reaches_them(mp16, tmp_path):
    """geodata deletes only the files its manifest lists *inside* the dataset folder."""
    out = tmp_path / "ds"
    assert cli("build", PIPE, "--set", "sample.n=10", "--out", str(out)).exit_code == 0
    before_around = plant(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    m = json.loads((out / "manifest.json").read_text())
    m["configs"]["default"]["train"]["files"] += ["../downloads.csv", str(outside), "data/../../.hidden"]
    m["files"]["../thesis/chapters/ch1.tex"] = {"sha256": "0", "bytes": 0, "rows": 0}
    (out / "manifest.json").write_text(json.dumps(m))
    assert cli("build", PIPE, "--set", "sample.n=12", "--out", str(out)).exit_code == 0
    assert snapshot(tmp_path, skip=("ds", "outside.txt")) == before_around
    assert outside.read_text() == "mine"


def test_build_error_and_interruption_keep_everything(mp16, tmp_path, monkeypatch):
    import geodata.engine as engine
    import geodata.formats.parquet as parquet_format  # the default output format's writer

    out = tmp_path / "ds"
    assert cli("build", PIPE, "--set", "sample.n=10", "--out", str(out)).exit_code == 0
    inside = plant(out)
    around = plant(tmp_path / "next-door")
    whole = snapshot(out)

    # an error inside a step (a data-loss threshold) before anything is written
    res = cli("build", PIPE, "--set", "sample.n=11", "--set", "max_drop_fraction=0", "--out", str(out))
    assert res.exit_code == 2 and "max_drop_fraction=0" in res.output
    assert snapshot(out) == whole

    # an interruption inside the writer, after shards were written to the temp folder
    real = parquet_format.write_partition

    def dies(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(parquet_format, "write_partition", dies)
    with pytest.raises(KeyboardInterrupt):
        engine.build(PIPE, sets=["sample.n=13"], out=out)
    monkeypatch.setattr(parquet_format, "write_partition", real)
    assert snapshot(out) == whole
    assert snapshot(tmp_path / "next-door") == around

    # an interruption in the middle of the swap: old folder renamed aside, new one in place
    real_finish = own._finish_old
    monkeypatch.setattr(own, "_finish_old", lambda old, new: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        engine.build(PIPE, sets=["sample.n=14"], out=out)
    monkeypatch.setattr(own, "_finish_old", real_finish)
    # the next build finishes the swap: the user's files come back into the dataset folder
    engine.build(PIPE, sets=["sample.n=14"], out=out)
    for rel, (data, mtime) in inside.items():
        p = out / rel
        assert p.exists(), rel
        if p.is_file():
            assert (p.read_bytes(), p.stat().st_mtime_ns) == (data, mtime), rel
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]
    assert snapshot(tmp_path / "next-door") == around


def test_old_folder_that_geodata_did_not_write_is_never_touched(mp16, tmp_path):
    fake_old = tmp_path / ".ds.old-999999999"  # geodata's naming pattern, but the user's content
    fake_old.mkdir()
    before = plant(fake_old)
    assert cli("build", PIPE, "--set", "sample.n=10", "--out", str(tmp_path / "ds")).exit_code == 0
    assert snapshot(fake_old) == before


# -- sample-data --out ----------------------------------------------------------------------------


def test_sample_data_never_replaces_a_real_copy(tmp_path):
    real = tmp_path / "data" / "mp16"
    real.mkdir(parents=True)
    before = plant(real)
    res = cli("sample-data", "--out", str(tmp_path / "data"), "--only", "mp16")
    assert res.exit_code == 2 and f"--out {real}: a non-empty folder that geodata did not write" in res.output
    assert "sample marker" in res.output
    assert snapshot(real) == before


def test_sample_data_replaces_its_own_sample_and_keeps_neighbours(tmp_path, monkeypatch):
    from geodata.registry import SOURCES, _load_all

    _load_all()
    data = tmp_path / "data"
    data.mkdir()
    around = plant(data)
    assert cli("sample-data", "--out", str(data), "--only", "cvusa").exit_code == 0
    assert own.is_sample(data / "cvusa")
    assert cli("sample-data", "--out", str(data), "--only", "cvusa").exit_code == 0  # its own: replaced
    assert snapshot(data, skip=("cvusa",)) == around
    # interrupted while writing: the previous sample and the neighbours stay, no temp folder left
    sample_before = snapshot(data / "cvusa")
    info = SOURCES["cvusa"]

    def dies(d):
        (Path(d) / "half.csv").write_text("IMG_ID\n")
        raise KeyboardInterrupt

    import dataclasses

    from geodata.engine import write_sample_to

    with pytest.raises(KeyboardInterrupt):
        write_sample_to(dataclasses.replace(info, sample=dies), data / "cvusa")
    assert snapshot(data / "cvusa") == sample_before
    assert snapshot(data, skip=("cvusa",)) == around
    assert sorted(p.name for p in data.iterdir() if p.name.startswith(".cvusa")) == []


def test_default_sample_folder_without_marker_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODATA_DATA", str(tmp_path / "d"))
    root = tmp_path / "d" / "samples" / "mp16"
    root.mkdir(parents=True)
    before = plant(root)
    res = cli("build", PIPE, "--set", "sample.n=5", "--out", str(tmp_path / "ds"))
    assert res.exit_code == 2 and "MP16_ROOT is not set and the sample folder" in res.output
    assert snapshot(root) == before


# -- publish --dry-run --out ----------------------------------------------------------------------


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "datasets", name="fixture-set", n=6, shards=2)


def test_publish_refuses_a_user_folder(dataset, tmp_path):
    hub = tmp_path / "hub"
    hub.mkdir()
    before = plant(hub)
    res = cli("publish", str(dataset), "--repo-id", "org/x", "--dry-run", "--out", str(hub))
    assert res.exit_code == 2 and f"--out {hub}: a non-empty folder that geodata did not write" in res.output
    assert snapshot(hub) == before


def test_publish_success_rerun_and_foreign_file(dataset, tmp_path):
    around = plant(tmp_path / "mine")
    hub = tmp_path / "hub"
    assert cli("publish", str(dataset), "--repo-id", "org/x", "--dry-run", "--out", str(hub)).exit_code == 0
    assert cli("publish", str(dataset), "--repo-id", "org/x", "--dry-run", "--out", str(hub)).exit_code == 0
    ds_before = snapshot(dataset)
    # a file the user drops into the assembled folder would be uploaded: an error, and it stays
    (hub / "notes.txt").write_text("private")
    res = cli("publish", str(dataset), "--repo-id", "org/x", "--dry-run", "--out", str(hub))
    assert res.exit_code == 2 and "holds files geodata did not put there (notes.txt)" in res.output
    assert (hub / "notes.txt").read_text() == "private"
    assert snapshot(tmp_path / "mine") == around
    assert snapshot(dataset) == ds_before


def test_publish_interrupted_assembly_stays_geodata_s(dataset, tmp_path, monkeypatch):
    import geodata.publish as pub

    around = plant(tmp_path / "mine")
    hub = tmp_path / "hub"
    real = pub._link_or_copy
    calls = {"n": 0}

    def dies(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # after the manifest, inside the shards
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(pub, "_link_or_copy", dies)
    with pytest.raises(KeyboardInterrupt):
        pub.publish(dataset, "org/x", dry_run=True, out=hub)
    monkeypatch.setattr(pub, "_link_or_copy", real)
    assert own.is_publish_dir(hub)
    assert pub.publish(dataset, "org/x", dry_run=True, out=hub).folder == hub
    assert snapshot(tmp_path / "mine") == around
    for rel in json.loads((dataset / "manifest.json").read_text())["files"]:
        assert (hub / rel).is_file()


def test_temp_marker_rule(tmp_path):
    """A folder named like geodata's temp folder but without its marker is never removed."""
    lookalike = tmp_path / ".x.tmp-1"
    lookalike.mkdir()
    (lookalike / "keep").write_text("k")
    own.remove_temp(lookalike)
    own.clean_stale_temps(tmp_path / "x")
    assert (lookalike / "keep").read_text() == "k"
    made = own.make_temp(tmp_path / "x")
    assert (made / own.TEMP_MARKER).is_file()
    own.remove_temp(made)
    assert not made.exists()
    assert os.listdir(tmp_path) == [".x.tmp-1"]


# -- eval --out (one file) --------------------------------------------------------------------------


def test_eval_never_overwrites_a_user_file(tmp_path):
    truth = tmp_path / "yfcc4k_places365.csv"
    truth.write_text("IMG_ID,LAT,LON\na,48.8566,2.3522\n")
    preds = tmp_path / "p.csv"
    preds.write_text("id,pred_lat,pred_lon\na,48.8566,2.3522\n")
    mine = tmp_path / "results.json"
    mine.write_text('{"thesis": "table 3"}')
    before = snapshot(tmp_path)
    res = cli("eval", str(preds), "--truth", str(truth), "--out", str(mine), "--no-geocode")
    assert res.exit_code == 2 and "exists and geodata did not write it" in res.output
    assert snapshot(tmp_path) == before
    out = tmp_path / "r.json"
    assert cli("eval", str(preds), "--truth", str(truth), "--out", str(out), "--no-geocode").exit_code == 0
    assert cli("eval", str(preds), "--truth", str(truth), "--out", str(out), "--no-geocode").exit_code == 0  # its own
    assert json.loads(out.read_text())["written_by"] == "geodata"


def test_rebuild_drops_the_old_report_but_keeps_user_files_in_report(mp16, tmp_path):
    from geodata.engine import build
    from geodata.report import make_report

    out = tmp_path / "ds"
    build(PIPE, sets=["sample.n=10"], out=out)
    make_report(out, link=False)
    figures = sorted(p.name for p in (out / "report").glob("*.png"))
    assert figures
    (out / "report" / "my-figure.png").write_bytes(b"mine")
    make_report(out, link=False)  # a second report replaces only its own figures
    assert (out / "report" / "my-figure.png").read_bytes() == b"mine"
    build(PIPE, sets=["sample.n=11"], out=out)
    left = sorted(p.relative_to(out).as_posix() for p in (out / "report").rglob("*"))
    assert left == ["report/my-figure.png"], left
