"""Issue 19, faults around the user's files, the final swap and misleading messages (fast, offline).

* item 1: no command deletes or overwrites a file geodata did not write: ``sample-data`` rerun,
  ``report``, ``predict``'s parts, ``train tiny-model`` and grpo's linked folders, each with user
  files planted inside, beside and in the sub-folders it writes;
* item 5: a crash or a ``kill -9`` at every point of the final swap leaves the old or the new
  dataset at the path, the next command recovers, and no temp marker stays inside;
* items 6-8: ``sql`` refuses a view two datasets share, ``check vigor`` reports both label sets,
  and each misleading message names its cause and its fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dataset_fixture import make_dataset
from geodata.dataset import ownership as own
from geodata.cli import app
from geodata.errors import OwnershipError

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def cli(*argv: str):
    return runner.invoke(app, list(argv))


def snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[bytes, int]]:
    """Every file (bytes, mtime) and folder under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        out[rel] = (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else (b"<dir>", 0)
    return out


def plant(folder: Path, files: dict[str, str]) -> dict[str, tuple[bytes, int]]:
    """Write the user's ``files`` (relative path → text) under ``folder``; return their snapshot."""
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    snap = snapshot(folder)
    return {k: snap[k] for k in files}


def kept(folder: Path, before: dict[str, tuple[bytes, int]]) -> None:
    snap = snapshot(folder)
    for rel, val in before.items():
        assert snap.get(rel) == val, f"{rel} changed or went"


# -- item 1: sample-data ----------------------------------------------------------------------------


def test_sample_data_rerun_keeps_user_files_inside_beside_and_in_its_subfolders(tmp_path):
    x = tmp_path / "X"
    assert cli("sample-data", "--out", str(x), "--only", "mp16").exit_code == 0
    sample = sorted(own.sample_files(x / "mp16"))
    assert "mp16_places365.csv" in sample and any(f.startswith("images/mp16/") for f in sample)
    mine = plant(x, {"mp16/my_labels.csv": "IMG_ID,label\na,1\n", "notes.txt": "beside",
                     "mp16/images/mp16/my_extra.msg": "not a shard of geodata's",
                     "mp16/images/mine/keep.txt": "a folder of my own"})
    (x / "mp16" / "mp16_places365.csv").unlink()  # one of geodata's files lost: the rerun restores it
    res = cli("sample-data", "--out", str(x), "--only", "mp16")
    assert res.exit_code == 0, res.output
    kept(x, mine)
    assert own.is_sample(x / "mp16") and sorted(own.sample_files(x / "mp16")) == sample
    assert (x / "mp16" / "mp16_places365.csv").is_file()
    assert not [p.name for p in x.iterdir() if p.name.startswith(".")], "no temp folder may stay"


def test_sample_data_rerun_keeps_a_dataset_built_inside_the_sample(tmp_path, monkeypatch):
    x = tmp_path / "X"
    assert cli("sample-data", "--out", str(x), "--only", "mp16").exit_code == 0
    monkeypatch.setenv("MP16_ROOT", str(x / "mp16"))
    res = cli("build", "mp16-rand-500k", "--set", "sample.n=8", "--out", str(x / "mp16" / "my-dataset"))
    assert res.exit_code == 0, res.output  # the build allows that path ...
    before = snapshot(x / "mp16" / "my-dataset")
    assert cli("sample-data", "--out", str(x), "--only", "mp16").exit_code == 0
    assert snapshot(x / "mp16" / "my-dataset") == before  # ... and the sample rerun keeps it


def test_sample_data_refuses_a_user_file_where_the_sample_writes(tmp_path):
    x = tmp_path / "X"
    assert cli("sample-data", "--out", str(x), "--only", "cvusa").exit_code == 0
    # a marker of an older geodata (its text alone): only files with the sample's exact bytes are geodata's
    (x / "cvusa" / own.SAMPLE_MARKER).write_text(own.SAMPLE_TEXT)
    target = next(f for f in sorted(own._all_files(x / "cvusa")) if f.endswith(".csv"))
    (x / "cvusa" / target).write_text("my edited copy\n")
    before = snapshot(x)
    res = cli("sample-data", "--out", str(x), "--only", "cvusa")
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "would replace files geodata did not write" in res.output and target in res.output
    assert snapshot(x) == before


def test_sample_replace_interrupted_between_files_is_finished_by_the_next_run(tmp_path, monkeypatch):
    x = tmp_path / "X"
    assert cli("sample-data", "--out", str(x), "--only", "cvusa").exit_code == 0
    mine = plant(x, {"cvusa/mine.txt": "mine", "cvusa/splits/mine.csv": "mine"})
    calls = {"n": 0}

    def crash(what):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(own, "_step", crash)
    assert cli("sample-data", "--out", str(x), "--only", "cvusa").exit_code != 0
    assert own.is_sample_folder(x / "cvusa") and not own.is_sample(x / "cvusa")  # marked partial
    monkeypatch.setattr(own, "_step", lambda what: None)
    assert cli("sample-data", "--out", str(x), "--only", "cvusa").exit_code == 0
    assert own.is_sample(x / "cvusa")
    kept(x, mine)
    assert not [p.name for p in x.iterdir() if p.name.startswith(".")]


# -- item 1: report ---------------------------------------------------------------------------------


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "datasets", name="fixture-set", n=8, shards=2)


def test_report_never_overwrites_the_users_summary_or_figures(dataset):
    mine = plant(dataset, {"report/summary.md": "my summary", "report/countries.png": "my figure"})
    card = (dataset / "README.md").read_bytes()
    res = cli("report", str(dataset))
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "geodata report would replace files geodata did not write" in res.output
    assert "report/countries.png" in res.output and "report/summary.md" in res.output
    kept(dataset, mine)
    assert (dataset / "README.md").read_bytes() == card
    assert sorted(p.name for p in (dataset / "report").iterdir()) == ["countries.png", "summary.md"]


def test_report_rerun_replaces_its_own_files_and_keeps_the_users(dataset, tmp_path):
    beside = plant(tmp_path, {"notes.md": "beside"})
    assert cli("report", str(dataset)).exit_code == 0
    first = (dataset / "report" / "summary.md").read_text()
    mine = plant(dataset, {"report/my_notes.md": "mine", "report/drafts/fig.png": "mine", "my.txt": "mine"})
    (dataset / "report" / "tasks.png").unlink()  # geodata's (recorded): written again
    res = cli("report", str(dataset))
    assert res.exit_code == 0, res.output
    assert (dataset / "report" / "summary.md").read_text() == first and (dataset / "report" / "tasks.png").is_file()
    kept(dataset, mine)
    kept(tmp_path, beside)
    # a recorded file the user edited since is theirs: the next report refuses to replace it
    edited = plant(dataset, {"report/summary.md": "my edits of the summary"})
    res = cli("report", str(dataset))
    assert res.exit_code == 2 and "would replace files geodata did not write (report/summary.md)" in res.output
    kept(dataset, {**mine, **edited})


# -- item 1: predict's parts, train tiny-model, grpo's linked folders --------------------------------


def test_predict_parts_clean_up_keeps_user_files_and_ignores_their_parquet(tmp_path):
    from geodata.dataset.ownership import mark_table
    from geodata_train.predict import PARTS_MARKER, _done_ids, _frame, _remove_parts

    parts = tmp_path / "predictions.parquet.parts"
    parts.mkdir()
    (parts / PARTS_MARKER).write_text(json.dumps({"output": "x"}) + "\n")
    import pyarrow.parquet as pq

    pq.write_table(mark_table(_frame(["a"], ["geolocation"], ["(1, 2)"]).to_arrow()), parts / "rank00000-1.parquet")
    pl.DataFrame({"id": ["zzz"]}).write_parquet(parts / "mine.parquet")  # the user's, same suffix
    mine = plant(parts, {"notes.txt": "mine"})
    assert _done_ids(parts) == {"a"}  # the user's parquet is not a part
    _remove_parts(parts)
    assert sorted(p.name for p in parts.iterdir()) == ["mine.parquet", "notes.txt"]
    kept(parts, mine)


def test_tiny_model_folder_keeps_user_files_and_refuses_clashes(tmp_path):
    from geodata_train.tiny import TINY_MARKER, save_into

    def save(version):
        def write(folder):
            (folder / "config.json").write_text(json.dumps({"v": version}))
            (folder / "model.safetensors").write_text(f"weights {version}")
            if version == 1:
                (folder / "old_only.json").write_text("{}")
        return write

    out = tmp_path / "tiny"
    beside = plant(tmp_path, {"notes.txt": "beside"})
    save_into(out, save(1), "tiny")
    mine = plant(out, {"notes.txt": "mine", "sub/x.txt": "mine"})
    save_into(out, save(2), "tiny")
    assert json.loads((out / "config.json").read_text()) == {"v": 2}
    assert not (out / "old_only.json").exists()  # geodata's, listed: removed with the new version
    kept(out, mine)
    kept(tmp_path, beside)
    # a file of the user's where the model writes (not in the marker's list): refused, nothing changes
    listing = json.loads((out / TINY_MARKER).read_text())
    listing["files"].remove("config.json")
    (out / TINY_MARKER).write_text(json.dumps(listing))
    before = snapshot(tmp_path)
    with pytest.raises(OwnershipError, match="config.json"):
        save_into(out, save(3), "tiny")
    assert snapshot(tmp_path) == before
    user = tmp_path / "user"
    plant(user, {"x.txt": "mine"})
    with pytest.raises(OwnershipError, match="is not a tiny model geodata wrote"):
        save_into(user, save(1), "tiny")


def test_grpo_linked_folders_keep_user_files(tmp_path, monkeypatch):
    import types

    from geodata_train import grpo

    src = tmp_path / "base"
    plant(src, {"config.json": "{}", "model.safetensors": "w"})
    fake = types.ModuleType("geodata_train.models")
    fake.save_processor = lambda proc, folder: (Path(folder) / "preprocessor_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "geodata_train.models", fake)
    policy = tmp_path / "run" / ".geodata" / "policy"
    grpo.policy_folder(str(src), None, policy)
    mine = plant(policy, {"notes.txt": "mine"})
    grpo.policy_folder(str(src), None, policy)  # a rerun used to delete every file in the folder
    kept(policy, mine)
    assert (policy / "model.safetensors").is_symlink()
    # the final model linked into output_dir: the user's file there is refused, then kept on reruns
    stage, out = tmp_path / "run" / "b", tmp_path / "run"
    plant(stage, {"config.json": '{"stage": "b"}', "model.safetensors": "b"})
    user = plant(out, {"config.json": "the user's own"})
    with pytest.raises(OwnershipError, match="config.json"):
        grpo._link_final(stage, out)
    kept(out, user)
    (out / "config.json").unlink()
    grpo._link_final(stage, out)
    notes = plant(out, {"notes.txt": "mine"})
    grpo._link_final(stage, out)
    kept(out, notes)
    assert (out / "model.safetensors").read_text() == "b"


@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_training_never_writes_into_a_users_folder(tmp_path, kind):
    from geodata_train import grpo, sft

    user = tmp_path / "work"
    mine = plant(user, {"thesis.tex": "months of work", "config.json": "mine"})
    run, recipe = (sft.run, "geo-r-sft") if kind == "sft" else (grpo.run, "geo-r-grpo")
    with pytest.raises(OwnershipError, match=f"train.output_dir {re.escape(str(user))}: a non-empty folder that "
                                             f"geodata did not write \\(no {re.escape(sft.RUN_MARKER)}\\)"):
        run(recipe, [f"train.output_dir={user}"])
    assert snapshot(user) == mine
    # a new folder is claimed first of all (every rank agrees), and claimed again on a resume
    from geodata_train.recipe import load_recipe

    r = load_recipe(recipe, [f"train.output_dir={tmp_path / 'run'}"])
    assert sft.claim_output_dir(r) == tmp_path / "run" and (tmp_path / "run" / sft.RUN_MARKER).is_file()
    (tmp_path / "run" / "checkpoint-2").mkdir()
    assert sft.claim_output_dir(r) == tmp_path / "run"


def test_make_clean_removes_only_what_geodata_wrote(tmp_path):
    datasets, samples = tmp_path / "datasets", tmp_path / "data" / "samples"
    ds = make_dataset(datasets, name="fixture-set", n=4, shards=1)
    (datasets / ".fixture-set.tmp-999999999").mkdir()
    (datasets / ".fixture-set.tmp-999999999" / own.TEMP_MARKER).write_text("")
    assert cli("sample-data", "--out", str(samples), "--only", "cvusa").exit_code == 0
    mine = plant(tmp_path, {"datasets/notes.txt": "beside", "datasets/mine/a.csv": "a folder of mine",
                            "datasets/fixture-set/my.md": "inside a dataset", "datasets/fixture-set/data/x.txt": "in its data/",
                            "data/samples/cvusa/my_labels.csv": "inside a sample"})
    kept_paths = own.clean_built(datasets, samples)
    kept(tmp_path, mine)
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in kept_paths) == [
        "data/samples/cvusa/my_labels.csv", "datasets/fixture-set/data/x.txt", "datasets/fixture-set/my.md",
        "datasets/mine", "datasets/notes.txt"]
    assert sorted(own._all_files(tmp_path)) == sorted(mine)  # every file geodata wrote is gone
    assert not ds.joinpath("manifest.json").exists()
    assert "clean_built" in (REPO / "Makefile").read_text()


# -- item 5: the swap -------------------------------------------------------------------------------

USER = {"notes.txt": "mine", "data/mine.csv": "in a folder geodata writes", "sub/deep/x.txt": "deep", ".hidden": "h"}


def _swap_setup(tmp_path: Path) -> tuple[Path, Path, dict, int, int]:
    """``out`` holds an old dataset (6 rows) with the user's files; a finished new one (9 rows) waits in a temp folder."""
    out = tmp_path / "ds"
    shutil.copytree(make_dataset(tmp_path / "old", n=6, shards=2), out)
    (out / own.TEMP_MARKER).write_text("")  # a stray marker an older geodata left inside
    mine = plant(out, USER)
    tmp = own.make_temp(out)
    new = make_dataset(tmp_path / "new", n=9, shards=3)
    for f in new.rglob("*"):
        if f.is_file():
            (tmp / f.relative_to(new)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, tmp / f.relative_to(new))
    return out, tmp, mine, 6, 9


def _rows(out: Path) -> int:
    return sum(f["rows"] for f in json.loads((out / "manifest.json").read_text())["files"].values())


def _settled(tmp_path: Path, out: Path, mine: dict, rows: set[int]) -> None:
    """The state every command must leave: a whole dataset at ``out``, the user's files there, nothing beside."""
    assert own.is_dataset(out) and _rows(out) in rows
    from geodata.dataset import Dataset

    ds = Dataset.open(out)
    assert all((out / f).is_file() for f in ds.listed_files())
    assert not (out / own.TEMP_MARKER).exists()
    kept(out, mine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "new", "old"], "nothing may stay beside"


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "fallback"])
def test_a_crash_at_every_point_of_the_swap_leaves_a_dataset_and_recovers(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(own, "_exchange", lambda a, b: False)
    points = 0
    while True:
        case = tmp_path / f"k{points}"
        case.mkdir()
        out, tmp, mine, old_rows, new_rows = _swap_setup(case)
        seen = []

        def crash(what, at=points):
            seen.append(what)
            if len(seen) == at + 1:
                raise KeyboardInterrupt(what)

        monkeypatch.setattr(own, "_step", crash)
        try:
            own.swap_in(tmp, out)
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.setattr(own, "_step", lambda what: None)
        if exchange or seen[-1:] != ["old renamed aside"]:  # the fallback's one gap: between two renames
            assert own.is_dataset(out) and _rows(out) in (old_rows, new_rows), f"crash after {seen[-1:]}"
            if _rows(out) == new_rows:
                assert not (out / own.TEMP_MARKER).exists()
        own.restore_interrupted(out)  # what the next command does first
        _settled(case, out, mine, {new_rows} if finished else {old_rows, new_rows})
        if finished:
            break
        points += 1
    assert points >= 6  # marker, exchange, moves of the user's files, deletions of the old files


def test_the_fallback_gap_is_closed_by_the_next_build(tmp_path, monkeypatch):
    monkeypatch.setattr(own, "_exchange", lambda a, b: False)
    out, tmp, mine, _, new_rows = _swap_setup(tmp_path)

    def crash(what):
        if what == "old renamed aside":
            raise KeyboardInterrupt

    monkeypatch.setattr(own, "_step", crash)
    with pytest.raises(KeyboardInterrupt):
        own.swap_in(tmp, out)
    assert not out.exists()  # the one gap, where the OS cannot exchange two folders ...
    monkeypatch.setattr(own, "_step", lambda what: None)
    own.restore_interrupted(out)  # ... closed by the next build (its first step)
    _settled(tmp_path, out, mine, {new_rows})


def test_exchange_is_atomic_here():
    """The swap's guarantee rests on the OS exchange; this machine (Linux) must have it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        a, b = Path(d) / "a", Path(d) / "b"
        a.mkdir(), b.mkdir()
        (a / "x").write_text("a")
        (b / "y").write_text("b")
        assert own._exchange(a, b)
        assert (a / "y").is_file() and (b / "x").is_file()


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from geodata.dataset import ownership as own
    seen = []
    def kill(what):
        seen.append(what)
        if len(seen) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    own._step = kill
    own.swap_in(Path(sys.argv[1]), Path(sys.argv[2]))
""")


@pytest.mark.parametrize("at", [1, 2, 4, 7, 8])
def test_kill_9_during_the_swap(tmp_path, at):
    """A real ``kill -9`` of the process swapping (after the marker, the exchange, a move, while the old goes)."""
    out, tmp, mine, old_rows, new_rows = _swap_setup(tmp_path)
    # the swap runs in a child process: its temp folder must carry the child's pid
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tmp), str(out), str(at)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    assert own.is_dataset(out) and _rows(out) in (old_rows, new_rows)
    own.restore_interrupted(out)
    _settled(tmp_path, out, mine, {old_rows, new_rows})


def test_a_build_after_a_killed_swap_completes_it(tmp_path, monkeypatch, mp16_small):
    """End to end: the swap of a rebuild crashes after the exchange; the next build recovers first."""
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    out = tmp_path / "ds"
    assert cli("build", "mp16-rand-500k", "--set", "sample.n=10", "--out", str(out)).exit_code == 0
    first = (out / "manifest.json").read_text()
    mine = plant(out, USER)

    def crash(what):
        if what.startswith("moved"):
            raise KeyboardInterrupt

    monkeypatch.setattr(own, "_step", crash)
    assert cli("build", "mp16-rand-500k", "--set", "sample.n=12", "--out", str(out)).exit_code != 0
    assert own.is_dataset(out) and (out / "manifest.json").read_text() != first  # the new one is in place
    assert any(p.name.startswith(".ds.") for p in tmp_path.iterdir())  # the old one waits beside
    monkeypatch.setattr(own, "_step", lambda what: None)
    res = cli("build", "mp16-rand-500k", "--set", "sample.n=12", "--out", str(out))
    assert res.exit_code == 0 and "up to date" in res.output, res.output
    kept(out, mine)
    assert not (out / own.TEMP_MARKER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


# -- item 6: two datasets of one name in sql --------------------------------------------------------


def test_sql_refuses_a_view_two_datasets_share_and_names_both(tmp_path):
    datasets = tmp_path / "datasets"
    a = make_dataset(datasets, name="fixture-set", n=4, shards=1)
    b = make_dataset(tmp_path / "elsewhere", name="fixture-set", n=7, shards=1)
    make_dataset(datasets, name="other-set", n=3, shards=1)
    res = cli("sql", "SELECT count(*) AS n FROM fixture_set", "--datasets", str(datasets), "--hub", str(b), "--format", "csv")
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert str(a.resolve()) in res.output and str(b.resolve()) in res.output
    assert "2 datasets of that name" in res.output
    ok = cli("sql", "SELECT count(*) AS n FROM other_set", "--datasets", str(datasets), "--hub", str(b), "--format", "csv")
    assert ok.exit_code == 0 and ok.output.splitlines()[-1] == "3"
    # two folders under datasets/ whose manifests carry the same name (a build with --out datasets/copy)
    shutil.copytree(a, datasets / "copy")
    res = cli("sql", "SELECT * FROM fixture_set", "--datasets", str(datasets))
    assert res.exit_code == 2 and str((datasets / "copy").resolve()) in res.output and str(a.resolve()) in res.output


# -- item 7: check reports what a build would ask to choose ------------------------------------------


def test_check_vigor_reports_both_label_sets(tmp_path):
    from geodata.check import check_source
    from geodata.sources.crossview.vigor import write_sample

    root = tmp_path / "vigor"
    write_sample(root)
    shutil.copytree(root / "splits__corrected", root / "splits")
    for p in (root / "splits").rglob("*__corrected.txt"):
        p.rename(p.with_name(p.name.replace("__corrected", "")))
    city = sorted((root / "splits").iterdir())[0]
    test_file = city / "same_area_balanced_test.txt"
    test_file.write_text(test_file.read_text().splitlines()[0] + "\n")  # the two sets differ
    counts = {c: check_source("vigor", root, params={"label_dir": c}) for c in ("splits", "splits__corrected")}
    assert counts["splits"]["rows"] != counts["splits__corrected"]["rows"]
    res = cli("check", "vigor", "--root", str(root))
    assert res.exit_code == 0, res.output
    assert "choose   label_dir: this root offers 2" in res.output
    for c, rep in counts.items():
        line = next(x for x in res.output.splitlines() if x.strip().startswith(f"label_dir={c} "))
        assert re.search(rf"\b{rep['rows']} rows \(" + re.escape(", ".join(f"{k} {v}" for k, v in rep["splits"].items())), line)
    # the build still asks, naming both and the key to set
    from geodata.context import StepContext
    from geodata.errors import ChoiceError
    from geodata.sources.crossview.vigor import read_vigor

    with pytest.raises(ChoiceError, match="set the source's label_dir to one of them"):
        read_vigor(StepContext(), root=root)


# -- item 8: messages that name the cause and the fix ------------------------------------------------


def test_sql_unknown_view_lists_the_views(tmp_path):
    datasets = tmp_path / "datasets"
    make_dataset(datasets, name="fixture-set", n=4, shards=1)
    res = cli("sql", "SELECT * FROM mp16_rand_500k", "--datasets", str(datasets))
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "(views: fixture_set)" in res.output
    res = cli("sql", "SELECT * FROM x", "--datasets", str(tmp_path / "none"))
    assert "no built dataset under" in res.output


@pytest.mark.parametrize("env,value,source", [("MP16_ROOT", "/data/mp61", "mp16"), ("CVUSA_ROOT", "/nonexistent", "cvusa")])
def test_a_root_variable_set_to_a_missing_path(tmp_path, monkeypatch, env, value, source):
    monkeypatch.setenv(env, value)
    pipe = "mp16-rand-500k" if source == "mp16" else "crossview-pairs"
    for argv in (["build", pipe, "--out", str(tmp_path / "o")], ["check", source]):
        res = cli(*argv)
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert f"source '{source}': {env}={value}: is set but the path does not exist; point it at" in res.output
        assert f"(set {env})" not in res.output


def test_show_suggests_only_pipelines_that_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODATA_DATASETS", str(tmp_path / "datasets"))
    res = cli("show", "mp16-rand-50k")
    assert res.exit_code == 2, res.output
    assert "geodata build mp16-rand-50k" not in res.output
    assert "no pipeline 'mp16-rand-50k' either (did you mean mp16-rand-500k" in res.output
    assert "run `geodata build mp16-rand-500k` first" in cli("show", "mp16-rand-500k").output


def test_eval_on_a_missing_predictions_file(tmp_path, dataset):
    res = cli("eval", str(tmp_path / "missing.parquet"), "--truth", str(dataset))
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "missing.parquet: the predictions file does not exist" in res.output
    assert "PREDICTIONS" not in res.output


def test_spec_key_typos_get_did_you_mean(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\nseeed: 1\nsources:\n  mp16: {reader: mp16, splitz: 3}\nsteps: []\noutput: {shard_max_bm: 3}\n")
    out = cli("build", str(spec), "--out", str(tmp_path / "o")).output
    assert "unknown key 'seeed' (did you mean seed?)" in out
    assert "unknown key 'output.shard_max_bm' (did you mean shard_max_mb?)" in out
    spec.write_text("name: t\nsources:\n  mp16: {reader: mp16, imagse: folder}\nsteps: []\n")
    assert "unknown key 'imagse' (did you mean images?)" in cli("build", str(spec), "--out", str(tmp_path / "o")).output
    out = cli("build", "mp16-rand-500k", "--set", "sampel.n=3", "--out", str(tmp_path / "o")).output
    assert "'sampel' (did you mean sample" in out
    assert "(did you mean mp16-rand-500k" in cli("build", "mp16-rand-50k").output
    # the recipe keys use the same helper
    from geodata.errors import did_you_mean

    assert did_you_mean("learnig_rate", ["learning_rate", "seed"]) == " (did you mean learning_rate?)"


def test_coverage_error_gives_the_command_line_flag():
    from geodata.context import StepContext
    from geodata.errors import BuildError
    from geodata.steps.hard import join_predictions

    rows = pl.DataFrame({"id": [str(i) for i in range(10)], "lat": [1.0] * 10, "lon": [2.0] * 10})
    preds = pl.DataFrame({"id": ["0", "1", "2"], "pred_lat": [1.0] * 3, "pred_lon": [2.0] * 3, "parsed": [True] * 3})
    with pytest.raises(BuildError) as exc:
        join_predictions(rows, StepContext(name="join", limits={"min_prediction_coverage": 0.5}), predictions=preds)
    msg = str(exc.value)
    assert "predictions cover 3 of 10 rows" in msg
    assert "pass --set min_prediction_coverage=0.3 on the command line" in msg
    assert "\n" not in msg
