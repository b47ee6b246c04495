"""Runners: local 1 worker, local 2 workers and Ray write the same bytes (shards, manifest, card)."""

from __future__ import annotations

import importlib.util
import operator
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.engine import build
from geodata.errors import SpecError
from geodata.runners import get_runner, ordered_window, resolve_workers

PIPE = "mp16-rand-500k"


def _runners(request, workers: int | str = 2) -> list[tuple[str, str, int | str]]:
    """local 1, local 2 and, when ray is installed, Ray (one local Ray per module)."""
    out = [("w1", "local", 1), ("w2", "local", workers)]
    if importlib.util.find_spec("ray") is not None:
        request.getfixturevalue("ray_session")
        out.append(("ray", "ray", 2))
    return out


def _outputs(folder: Path) -> dict[str, bytes]:
    """Every file of a built dataset but build_stats.json (the one place timings go)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "build_stats.json"}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (2 CPUs) for the module; the runner reuses it and leaves it running."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 1024 * 1024)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """3,000 rows of real-size (320 px) JPEGs in the MP-16 folder layout; 3 missing, 2 truncated."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
    from benchmarks.bench_scale import write_image_root

    root = tmp_path_factory.mktemp("mp16-320") / "mp16"
    planted = write_image_root(root, 3000, layout="folder", distinct=40)
    assert planted["missing_image"] == 3 and planted["undecodable_image"] == 2
    return root


def test_import_geodata_imports_neither_ray_nor_torch():
    code = ("import sys, geodata, geodata.engine, geodata.cli, geodata.runners.local, geodata.runners.ray\n"
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runners_agree_on_the_demo(datasets_tmp, request):
    # the embedded MP-16 sample (3,000 rows of 32 px JPEGs, planted bad rows), small shards
    sets = ["output.shard_max_mb=0.1", "output.row_group_rows=100"]
    runs = {}
    for key, runner, workers in _runners(request):
        res = build(PIPE, sets=sets, out=datasets_tmp / key, force=True, runner=runner, workers=workers)
        runs[key] = (res.drops, res.rows, _outputs(datasets_tmp / key))
    ref_drops, ref_rows, ref = runs["w1"]
    assert ref_drops["missing_image"] == 6 and ref_drops["undecodable_image"] == 1
    assert sum(k.endswith(".parquet") for k in ref) > 3  # several shards, so boundaries are tested
    for key in list(runs)[1:]:
        drops, rows, files = runs[key]
        assert (drops, rows) == (ref_drops, ref_rows), key
        assert files.keys() == ref.keys(), key
        for name in ref:
            assert files[name] == ref[name], f"{key}: {name} differs"


def test_runners_agree_on_real_size_images(image_root, tmp_path, monkeypatch, request):
    monkeypatch.setenv("MP16_ROOT", str(image_root))
    sets = ["sample.n=5000", "output.shard_max_mb=8", "output.row_group_rows=64"]
    runs = {}
    for key, runner, workers in _runners(request, workers="2"):
        res = build(PIPE, sets=sets, out=tmp_path / key, force=True, runner=runner, workers=workers)
        runs[key] = (res.drops, res.rows, _outputs(tmp_path / key))
    drops, rows, ref = runs["w1"]
    assert drops["missing_image"] == 3 and drops["undecodable_image"] == 2
    assert rows == 3000 - 5
    shards = [k for k in ref if k.endswith(".parquet")]
    assert len(shards) >= 9, shards  # ~90 MiB of JPEG in 8 MiB shards
    for key in list(runs)[1:]:
        assert runs[key][:2] == (drops, rows), key
        assert runs[key][2] == ref, f"{key}: bytes differ from --workers 1"
    import pyarrow.parquet as pq

    first = pq.read_table(tmp_path / "w2" / shards[0]).column("images").to_pylist()[0][0]
    from io import BytesIO

    from PIL import Image

    assert min(Image.open(BytesIO(first["bytes"])).size) == 320


def test_build_up_to_date_whatever_the_runner(datasets_tmp):
    first = build(PIPE, sets=["sample.n=50"], workers=1)
    assert first.status == "built"
    # neither the runner nor the worker count is part of the dataset's identity
    assert build(PIPE, sets=["sample.n=50"], workers=2).status == "up to date"
    assert build(PIPE, sets=["sample.n=50"], runner="ray", workers=2).status == "up to date"


def test_local_pool_is_ordered_bounded_and_raises():
    pulled = []

    def args():
        for i in range(40):
            pulled.append(i)
            yield (i, 3)

    with get_runner("local", workers=2) as run:
        it = run.imap(operator.mul, args())
        assert next(it) == 0
        assert len(pulled) <= run.window + 1  # read lazily: one yielded, a window in flight
        assert list(it) == [3 * i for i in range(1, 40)]
        with pytest.raises(ZeroDivisionError):
            list(run.imap(operator.truediv, [(1, 1), (1, 0), (2, 1)]))


def test_ordered_window_never_exceeds_its_window():
    live, peak = set(), [0]

    def submit(a):
        live.add(a[0])
        peak[0] = max(peak[0], len(live))
        return a[0]

    def result(h):
        live.discard(h)
        return h * 2

    assert list(ordered_window(submit, result, [(i,) for i in range(25)], 4)) == [2 * i for i in range(25)]
    assert peak[0] == 4


def test_bad_runner_or_workers_is_one_line_exit_2(datasets_tmp):
    from geodata.cli import app

    res = CliRunner().invoke(app, ["build", PIPE, "--runner", "spark"])
    assert res.exit_code == 2 and "unknown runner 'spark' (known: local, ray)" in res.output
    res = CliRunner().invoke(app, ["build", PIPE, "--workers", "many"])
    assert res.exit_code == 2 and "--workers: expected a number or 'auto', got 'many'" in res.output
    with pytest.raises(SpecError):
        resolve_workers(-1)
    assert resolve_workers("auto") >= 1


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """60 MP-16 rows (with the planted bad ones) in the folder layout: map steps in ~8 chunks of 7."""
    from geodata.sources.mp16 import write_sample

    root = tmp_path_factory.mktemp("mp16-60") / "mp16"
    write_sample(root, n=60, layouts=("folder",))
    return root


def test_chunked_map_steps_agree_across_runners(small_root, tmp_path, monkeypatch, request):
    # validate_coords, require_images, reverse_geocode and geo_r1_scaffold (rng) run in chunks
    # of 7 rows on each runner; teacher_rationale (parallel=False) runs on the driver
    import pyarrow.parquet as pq

    monkeypatch.setenv("MP16_ROOT", str(small_root))
    pipe, sets = "geo-r1-scaffold", ["output.row_group_rows=16", "output.shard_max_mb=0.05"]
    chunked = [*sets, "output.map_chunk_rows=7"]
    runs = {}
    for key, runner, workers in _runners(request):
        res = build(pipe, sets=chunked, out=tmp_path / key, force=True, runner=runner, workers=workers)
        runs[key] = (res.drops, res.rows, _outputs(tmp_path / key))
    drops, rows, ref = runs["w1"]
    assert rows > 3 * 7  # several chunks per map step
    for key in list(runs)[1:]:
        assert runs[key][:2] == (drops, rows), key
        assert runs[key][2] == ref, f"{key}: bytes differ from --workers 1"

    one = build(pipe, sets=sets, out=tmp_path / "one", force=True)  # every map step in one chunk
    assert (one.drops, one.rows) == (drops, rows)

    def table(key: str) -> pl.DataFrame:
        return pl.from_arrow(pq.read_table(sorted((tmp_path / key).rglob("*.parquet")))).select(
            "id", "country", "city", "solution", "completion")

    a, b = table("w1"), table("one")
    assert a.drop("completion").equals(b.drop("completion"))  # row-local results do not depend on chunks
    # ... the template draws do: each chunk (part > 0) draws its own
    assert not a["completion"].equals(b["completion"])
