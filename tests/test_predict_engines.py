"""``geodata predict`` over built datasets in the one predictions schema, with the openai engine
against the local stub server (no torch, no GPU): configs, resume after a kill, sharding over
processes by ``RANK`` / ``WORLD_SIZE``, failed requests, and the readers of the schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from geodata.engine import build
from geodata.errors import BuildError, SpecError
from geodata.predictions import PREDICTION_COLUMNS
from geodata.sources.predictions import load_predictions
from stub_openai import MODEL, _Stub

pytest.importorskip("datasets")

from geodata_train import predict  # noqa: E402
from geodata_train.recipe import adhoc_recipe  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def built(session_dir: Path) -> dict[str, Path]:
    """mp16-rand-500k (12 rows, one config) and eo-instruct (several configs) from the samples."""
    root = session_dir / "predict-datasets"
    out = {}
    for name, sets in (("mp16-rand-500k", ["sample.n=12"]), ("eo-instruct", [])):
        out[name] = build(name, sets=sets, out=root / name).path
    return out


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _recipe(ds: Path, url: str, *extra: str) -> object:
    return adhoc_recipe(str(ds), [f"model.name_or_path={MODEL}", f"predict.base_url={url}",
                                  "predict.timeout=2", "predict.max_retries=1", *extra])


def _ids(ds: Path, config: str = "data") -> list[str]:
    return pl.read_parquet(sorted((ds / config).glob("train-*.parquet")), columns=["id"])["id"].to_list()


def test_openai_engine_writes_the_one_schema_in_dataset_order(built: dict[str, Path], cache: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    ds = built["mp16-rand-500k"]
    with _Stub() as srv:
        out = predict.run(_recipe(ds, srv.url), out=tmp_path / "p.parquet")
        assert srv.chat_requests == 12
        predict.run(_recipe(ds, srv.url), out=out)  # a rerun is answered from the response cache
        assert srv.chat_requests == 12
    df = pl.read_parquet(out)
    assert df.columns == list(PREDICTION_COLUMNS) == [
        "id", "config", "task", "completion", "pred_lat", "pred_lon", "answer", "parsed", "finish_reason",
        "engine", "model"]
    assert df["id"].to_list() == _ids(ds) and set(df["config"]) == {"default"}
    assert set(df["engine"]) == {"openai"} and set(df["model"]) == {MODEL} and set(df["finish_reason"]) == {"stop"}
    assert df["parsed"].all() and df["pred_lat"].is_not_null().all()
    assert "images/s overall" in capsys.readouterr().out
    # the predictions source reads it back, every schema column kept
    back = load_predictions(out)
    assert back["pred_lat"].to_list() == df["pred_lat"].to_list() and "finish_reason" in back.columns


def test_several_configs_ask_which_or_take_all_labelled(built: dict[str, Path], cache: Path, tmp_path: Path) -> None:
    ds = built["eo-instruct"]
    with _Stub() as srv:
        with pytest.raises(SpecError, match=r"has \d+ configs of rows \(.*scene_cls.*vqa\): choose one with "
                                            r"--config NAME \(data.config\), or predict them all with --config all"):
            predict.run(_recipe(ds, srv.url), out=tmp_path / "p.parquet")
        assert srv.chat_requests == 0
        one = pl.read_parquet(predict.run(_recipe(ds, srv.url, "data.config=vqa"), out=tmp_path / "vqa.parquet"))
        every = pl.read_parquet(predict.run(_recipe(ds, srv.url, "data.config=all"), out=tmp_path / "all.parquet"))
    assert set(one["config"]) == {"vqa"} and one["id"].to_list() == _ids(ds, "vqa")
    configs = sorted(p.name for p in ds.iterdir() if p.is_dir() and list(p.glob("train-*.parquet")))
    assert sorted(set(every["config"])) == configs and every.height == sum(len(_ids(ds, c)) for c in configs)
    assert (every["task"] == every["config"]).all()  # eo-instruct is configured by task
    assert every.filter(pl.col("task") != "geolocation")["pred_lat"].is_null().all()  # only geolocation is coordinates


def test_failed_requests_fail_the_run_and_a_rerun_sends_only_them(built: dict[str, Path], cache: Path,
                                                                   tmp_path: Path) -> None:
    ds = built["mp16-rand-500k"]
    out = tmp_path / "p.parquet"
    with _Stub(outage_after=8, outage_seconds=3.0) as srv:
        # no retry: the 4 requests after the outage fail at once, while the server is down
        with pytest.raises(BuildError, match=rf"4 of 12 requests failed: 4 requests gave up on the connection to "
                                             rf"{srv.url} after 1 attempt.*rerun the same command"):
            predict.run(_recipe(ds, srv.url, "predict.concurrency=1", "predict.max_retries=0"), out=out)
        assert not out.exists()
        assert srv.up_again.wait(10)
        before = srv.chat_requests
        predict.run(_recipe(ds, srv.url, "predict.concurrency=1"), out=out)
        assert srv.chat_requests - before == 4
    assert pl.read_parquet(out)["id"].to_list() == _ids(ds)


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "geodata_train", "predict", *args]
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_predict_resumes_and_ranks_share_the_rows(built: dict[str, Path], cache: Path, tmp_path: Path) -> None:
    ds = built["mp16-rand-500k"]
    ids = _ids(ds)
    env = dict(os.environ, PYTHONPATH=str(REPO), GEODATA_CACHE=str(cache))
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    out = tmp_path / "p.parquet"
    args = ["--dataset", str(ds), "--base-url", "", "--model", MODEL, "--out", str(out),
            "--set", "predict.concurrency=1", "--set", "predict.batch_size=2"]
    with _Stub(delay=0.15) as srv:
        args[3] = srv.url
        proc = _cli(args, env, tmp_path)
        parts = out.with_name(out.name + ".parts")
        t0 = time.monotonic()
        while len(list(parts.glob("rank*.parquet"))) < 2 and time.monotonic() - t0 < 60 and proc.poll() is None:
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        done = pl.read_parquet(sorted(parts.glob("rank*.parquet")))["id"].to_list()
        assert 4 <= len(done) < 12 and not out.exists()
        # resume with two ranks: each takes every other row of what is left, rank 0 merges in dataset order
        srv.delay = 0.0
        before = srv.chat_requests
        procs = [_cli(args, dict(env, WORLD_SIZE="2", RANK=str(r), MASTER_PORT="29555"), tmp_path) for r in (0, 1)]
        logs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], logs
        # rows answered before the kill come from the parts; requests sent then but not saved, from the cache
        assert srv.chat_requests - before <= 12 - len(done)
    left = [i for i in range(12) if ids[i] not in done]
    assert f"rank 0/2: {sum(1 for i in left if i % 2 == 0)} rows" in logs[0]
    assert f"rank 1/2: {sum(1 for i in left if i % 2 == 1)} rows" in logs[1]
    assert f"({len(done)} from an earlier run)" in logs[0]
    df = pl.read_parquet(out)
    assert df["id"].to_list() == ids and df.columns == list(PREDICTION_COLUMNS)
    assert not parts.exists()


def test_hotspot_mining_reads_the_schema_and_old_files(tmp_path: Path) -> None:
    new = tmp_path / "new.parquet"
    old = tmp_path / "old.csv"
    from geodata.predictions import prediction_table

    prediction_table(["a", "b", "c"], ["geolocation", "geolocation", "vqa"],
                     ["<answer>(1.5, 2)</answer>", "none", "<answer>(3, 4)</answer>"],
                     ["stop", "length", "stop"], "hf", "m").write_parquet(new)
    pl.DataFrame({"id": ["a", "b"], "completion": ["<answer>(1.5, 2)</answer>", "none"]}).write_csv(old)
    n = load_predictions(new)
    assert n["parsed"].to_list() == [True, False, True] and n["pred_lat"].to_list() == [1.5, None, None]
    o = load_predictions(old)  # the narrower, older form still reads
    assert o["pred_lat"].to_list() == [1.5, None] and "finish_reason" not in o.columns


# -- the documented loop: predictions the user made are used, or the build says how -------------


@pytest.fixture()
def small_mp16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from geodata.sources.mp16 import write_sample

    root = tmp_path / "mp16"
    write_sample(root, n=40, layouts=("folder",), bad_rows=False)
    monkeypatch.setenv("MP16_ROOT", str(root))
    monkeypatch.setenv("GEODATA_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("PREDICTIONS", raising=False)
    return root


def _write_made(path: Path, root: Path, text: str | None = None) -> Path:
    """A predictions file as `geodata predict` writes it (geodata's marker in the schema metadata)."""
    import pyarrow.parquet as pq

    from geodata.dataset.ownership import mark_table
    from geodata.predictions import prediction_table

    meta = pl.read_csv(root / "mp16_places365.csv", infer_schema=False)
    # every other row solved (its truth), the rest some 3000 km off
    comp = [text or f"<answer>({float(la) - (27 if i % 2 else 0)}, {lo})</answer>"
            for i, (la, lo) in enumerate(zip(meta["LAT"], meta["LON"]))]
    t = prediction_table(meta["IMG_ID"].to_list(), "geolocation", comp, ["stop"] * meta.height, "hf", "m", "default")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(mark_table(t.to_arrow()), path)
    return path


def test_the_docs_chain_uses_the_users_predictions_or_names_the_command(
    small_mp16: Path, datasets_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geodata.errors import SourceError

    made = _write_made(tmp_path / "runs" / "mp16-predict" / "predictions.parquet", small_mp16)
    eo = tmp_path / "runs" / "predict-eo-instruct" / "predictions.parquet"  # another task's: never offered
    eo.parent.mkdir(parents=True)
    import pyarrow.parquet as pq

    from geodata.dataset.ownership import mark_table

    pq.write_table(mark_table(pl.read_parquet(made).with_columns(task=pl.lit("vqa")).to_arrow()), eo)
    # `geodata predict mp16-predict` then `geodata build mp16-hard-200k`: never the simulated sample
    with pytest.raises(SourceError, match=rf"PREDICTIONS is not set.*`geodata predict` wrote .*mp16-predict/"
                                          rf"predictions\.parquet\. Pass yours: PREDICTIONS={made} geodata build "
                                          rf"mp16-hard-200k \(or --set sources\.predictions\.root={made}"):
        build("mp16-hard-200k", sets=["sample.n=1000", "exclude.radius_km=1"])
    assert not (datasets_tmp / "mp16-hard-200k").exists()
    monkeypatch.setenv("PREDICTIONS", str(made))
    res = build("mp16-hard-200k", sets=["sample.n=1000", "exclude.radius_km=1"])
    assert res.notes["predictions.file"] == str(made) and res.notes["hotspots.solved"] == 20
    assert "predictions.schema" not in res.notes  # the one schema: nothing missing
    # a later plain build (a bare `make eval`) never swaps them for the sample's
    monkeypatch.delenv("PREDICTIONS")
    made.unlink()
    before = (res.path / "manifest.json").read_bytes()
    with pytest.raises(BuildError, match=r"built from your own 'predictions' input, and PREDICTIONS is not set now: "
                                         r"this build would replace it with one from the embedded sample"):
        build("mp16-hard-200k", sets=["sample.n=1000", "exclude.radius_km=1"])
    assert (res.path / "manifest.json").read_bytes() == before


def test_predictions_that_solve_nothing_warn_and_validate_says_so(
    small_mp16: Path, datasets_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from geodata.validate import validate_dataset

    caplog.set_level(logging.WARNING, logger="geodata")
    bad = _write_made(tmp_path / "bad.parquet", small_mp16, text="<answer>I cannot tell.</answer>")
    monkeypatch.setenv("PREDICTIONS", str(bad))
    res = build("mp16-hard-200k", sets=["sample.n=1000", "exclude.radius_km=1"])
    assert res.configs["hotspots"] == {"train": 0} and res.rows == 40
    assert res.notes["predictions.warning"] == "none of the 40 predictions could be parsed"
    assert "no row is solved within 25 km (0 of 40 rows have a usable prediction)" in res.notes["hotspots.warning"]
    assert any("none of the 40 predictions could be parsed" in r.getMessage() for r in caplog.records)
    rep = validate_dataset(res.path, images=False)
    assert rep.ok and "3 warnings" in rep.summary()
    assert any(w.startswith("config 'hotspots' split 'train' is empty (0 rows)") for w in rep.warnings)
    assert any("no row is solved" in w for w in rep.warnings)


def test_a_missing_model_or_checkpoint_names_the_command_that_makes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geodata_train.recipe import ModelSpec, check_model  # torch-free: also what geodata_train.models runs first

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=r"^model.name_or_path runs/geo-r-sft: no such model folder; it is made by the "
                                        r"earlier stage: geodata train sft geo-r-sft \(make sft RECIPE=geo-r-sft\)$"):
        check_model(ModelSpec(name_or_path="runs/geo-r-sft"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(SpecError, match=r"model 'Qwen/Qwen2.5-VL-3B-Instruct' is not in the local Hugging Face cache "
                                        r"and HF_HUB_OFFLINE is set: .*geodata train tiny-model runs/tiny"):
        check_model(ModelSpec(name_or_path="Qwen/Qwen2.5-VL-3B-Instruct"))
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    with pytest.raises(SpecError, match=r"runs/empty: the folder holds no model \(no config.json\)"):
        check_model(ModelSpec(name_or_path="runs/empty"))
