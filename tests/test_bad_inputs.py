"""Every bad input gets a clear one-line error (exit 2) or a counted drop, never a traceback or a
silent empty dataset. One row per input class: (what is broken, argv, exit code, message regex).

The MP-16 reader's own cases (CSV encodings, msgpack/tar shards, symlinked image folders, id
matching) live with the reader's tests; this table holds the engine's and the commands' cases.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.cli import app

runner = CliRunner()
PIPE = "mp16-rand-500k"


@pytest.fixture(scope="module")
def built(tmp_path_factory, mp16_small) -> Path:
    """A datasets folder with one small build (mp16-rand-500k, 20 rows)."""
    from geodata.engine import build

    ds = tmp_path_factory.mktemp("bad-inputs") / "datasets"
    old = os.environ.get("MP16_ROOT")
    os.environ["MP16_ROOT"] = str(mp16_small / "folder")
    try:
        build(PIPE, sets=["sample.n=20"], out=ds / PIPE)
    finally:
        os.environ.pop("MP16_ROOT") if old is None else os.environ.__setitem__("MP16_ROOT", old)
    return ds


def _mp16_root(tmp: Path, src: Path, *, header_only: bool = False, images: bool = False) -> Path:
    root = tmp / "mp16"
    root.mkdir()
    meta = next(src.glob("*.csv"))
    text = meta.read_text()
    (root / meta.name).write_text(text.splitlines()[0] + "\n" if header_only else text)
    (root / "images").mkdir()
    if images:
        shutil.copytree(src / "images", root / "images", dirs_exist_ok=True)
    return root


def _truncated_shard(ds: Path, tmp: Path) -> Path:
    folder = tmp / "trunc"
    shutil.copytree(ds / PIPE, folder)
    shard = sorted((folder / "data").glob("*.parquet"))[0]
    os.truncate(shard, shard.stat().st_size // 2)
    return folder


def _corrupt_manifest(ds: Path, tmp: Path) -> Path:
    root = tmp / "datasets"
    shutil.copytree(ds, root)
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text('{"name": ')
    return root


def _predictions(n_matching: int) -> Callable[[Path, Path], Path]:
    def make(tmp: Path, sample_ids: list[str]) -> Path:
        ids = sample_ids[:n_matching]
        f = tmp / "preds.csv"
        pl.DataFrame({"id": ids, "pred_lat": [10.0] * len(ids), "pred_lon": [10.0] * len(ids)}).write_csv(f)
        return f

    return make


# (case id, setup(tmp, ctx) -> {placeholder: value} and env, argv, exit code, regex on the output)
CASES = [
    ("empty --set value", None, ["build", PIPE, "--set", "sample.n="], 2, r"--set 'sample\.n=': empty value"),
    ("show -n -1", "built", ["show", PIPE, "-n", "-1", "--config", "default"], 2, r"show: -n must be 0 or more, got -1"),
    ("sql runtime error", "built", ["sql", "SELECT CAST('abc' AS INTEGER) AS x", "--datasets", "{ds}"], 2,
     r"^error: sql: Conversion Error: .*'abc'.*\n$"),
    ("sql parse error", "built", ["sql", "SELEC 1", "--datasets", "{ds}"], 2, r"^error: sql: Parser Error"),
    ("sql unknown format", "built", ["sql", "SELECT 1", "--datasets", "{ds}", "--format", "xml"], 2, r"unknown --format 'xml'"),
    ("corrupt manifest.json under datasets/", "corrupt", ["sql", "SELECT 1 AS one", "--datasets", "{root}"], 0,
     r"skipped .*broken: its manifest cannot be read: .*manifest\.json: not valid JSON \(line 1"),
    ("sql --format csv on nested columns", "built",
     ["sql", "SELECT id, prompt, images FROM mp16_rand_500k LIMIT 1", "--datasets", "{ds}", "--format", "csv"], 0,
     r'"\[\{""role"": ""user"", ""content"": \[\{""type"": ""image""'),
    ("truncated shard: validate names it", "trunc", ["validate", "{folder}", "--no-rewards"], 1,
     r"data/train-00000-of-00001\.p.*not a readable parquet"),
    ("empty predictions file", "empty_preds", ["eval", "{preds}", "--truth", "{ds}/" + PIPE, "--no-geocode"], 2,
     r"eval: predictions file .* is empty"),
    ("header-only predictions file", "header_preds", ["eval", "{preds}", "--truth", "{ds}/" + PIPE, "--no-geocode"], 2,
     r"eval: predictions file .* has no rows"),
    ("header-only MP-16 metadata", "header_only", ["build", PIPE, "--out", "{out}"], 2,
     r"^error: .*(no rows|header|empty)"),
    ("every image missing", "no_images", ["build", PIPE, "--out", "{out}"], 2,
     r"^error: mp16: no image under .*mp16 matches a metadata id .*ids look like \['[^']+', '[^']+', '[^']+'\]"),
    ("most images missing", "most_missing", ["build", PIPE, "--out", "{out}"], 2,
     r"lost \d+ of \d+ rows \((6|7|8)\d%\) as 'missing_image', more than max_drop_fraction=0\.5: images of source 'mp16' "
     r"were looked for under .*mp16 \(layout: folder.*?\); not found: '[^']+', '[^']+', '[^']+'"),
    ("a reader that finds no image (DOTA, eo-instruct)", "dota_no_images", ["build", "eo-instruct", "--out", "{out}"], 2,
     r"^error: .*dota: no DOTA object with an image found \(label folders: .*labelTxt"),
    ("predictions that match 3 rows (Hard-200K)", "few_preds", ["build", "mp16-hard-200k", "--out", "{out}"], 2,
     r"predictions cover 3 of \d+ rows \(0\.\d%\), fewer than min_prediction_coverage=0\.5"),
    ("path with brackets is printed as is", "brackets", ["build", PIPE, "--out", "{out}"], 2,
     r"MP16_ROOT=/data/\[old\]/mp16: is set but the path does not exist"),  # issue 19: the variable is named
    ("--out onto a file", "file_out", ["build", PIPE, "--out", "{file}"], 2, r"--out .*notes\.txt: is a file, not a folder"),
]


@pytest.mark.parametrize("case,setup,argv,code,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, setup, argv, code, pattern, request, tmp_path, monkeypatch, mp16_small):
    values: dict[str, str] = {"out": str(tmp_path / "out")}
    if setup in ("built", "trunc", "corrupt", "empty_preds", "header_preds"):
        ds = request.getfixturevalue("built")
        values["ds"] = str(ds)
        if setup == "trunc":
            values["folder"] = str(_truncated_shard(ds, tmp_path))
        if setup == "corrupt":
            values["root"] = str(_corrupt_manifest(ds, tmp_path))
        if setup in ("empty_preds", "header_preds"):
            f = tmp_path / "preds.csv"
            f.write_text("" if setup == "empty_preds" else "id,pred_lat,pred_lon\n")
            values["preds"] = str(f)
    elif setup == "header_only":
        monkeypatch.setenv("MP16_ROOT", str(_mp16_root(tmp_path, mp16_small / "folder", header_only=True)))
    elif setup == "no_images":
        monkeypatch.setenv("MP16_ROOT", str(_mp16_root(tmp_path, mp16_small / "folder")))
    elif setup == "most_missing":
        root = _mp16_root(tmp_path, mp16_small / "folder", images=True)
        files = sorted(p for p in (root / "images").rglob("*") if p.is_file())
        for p in files[: int(len(files) * 0.75)]:
            p.unlink()
        monkeypatch.setenv("MP16_ROOT", str(root))
    elif setup == "few_preds":
        root = _mp16_root(tmp_path, mp16_small / "folder", images=True)
        monkeypatch.setenv("MP16_ROOT", str(root))
        ids = pl.read_csv(next(root.glob("*.csv")), infer_schema=False)["IMG_ID"].to_list()
        monkeypatch.setenv("PREDICTIONS", str(_predictions(3)(tmp_path, ids)))
    elif setup == "dota_no_images":
        from geodata.registry import SOURCES, _load_all

        _load_all()
        root = tmp_path / "dota"
        SOURCES["dota"].sample(root)
        for img in root.glob("*/images/*"):
            img.unlink()
        monkeypatch.setenv("DOTA_ROOT", str(root))
    elif setup == "brackets":
        monkeypatch.setenv("MP16_ROOT", "/data/[old]/mp16")
    elif setup == "file_out":
        (tmp_path / "notes.txt").write_text("mine")
        values["file"] = str(tmp_path / "notes.txt")
    res = runner.invoke(app, [a.format(**values) for a in argv])
    out = res.output
    assert res.exit_code == code, out
    assert "Traceback" not in out
    assert re.search(pattern, out, re.M), out
    if code == 2:  # one error line (after any warnings, e.g. samples being written)
        lines = [line for line in out.splitlines() if not line.startswith("warning: ")]
        assert len(lines) == 1 and lines[0].startswith("error: "), out


def test_debug_flag_and_env_show_the_traceback(built, monkeypatch):
    from geodata.errors import GeodataError

    res = runner.invoke(app, ["--debug", "show", PIPE, "-n", "-1"])
    assert res.exit_code != 2 and isinstance(res.exception, GeodataError)
    monkeypatch.setenv("GEODATA_DEBUG", "1")
    res = runner.invoke(app, ["show", PIPE, "-n", "-1"])
    assert isinstance(res.exception, GeodataError)


def test_messages_are_plain_text(built, monkeypatch):
    """Nothing a user typed is read as rich markup: brackets survive in tables and lines."""
    res = runner.invoke(app, ["sql", "SELECT '[bold]x[/bold] grpo[vqa]' AS s", "--datasets", str(built)])
    assert res.exit_code == 0 and "[bold]x[/bold] grpo[vqa]" in res.output
    from geodata import cli

    with cli.console.capture() as cap:  # what `geodata train validate` prints for a grpo[vqa] stage
        cli.console.print("grpo [vqa]: 25 rows", highlight=False)
    assert cap.get() == "grpo [vqa]: 25 rows\n"


# -- counted drops ------------------------------------------------------------------------------


def _png(size: tuple[int, int], mode: str = "1") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def test_large_images_are_counted_not_a_warning_flood(tmp_path, recwarn):
    from geodata.dataset.writer import write_partition

    big = tmp_path / "big.png"
    big.write_bytes(_png((14000, 14000)))  # Pillow's own guard calls this a decompression bomb
    small = tmp_path / "small.png"
    small.write_bytes(_png((8, 8), "RGB"))
    cut = tmp_path / "cut.png"
    cut.write_bytes(_png((64, 64), "RGB")[:40])
    df = pl.DataFrame({"id": ["big", "small", "cut"], "images": [[str(big)], [str(small)], [str(cut)]]})
    res = write_partition(df, tmp_path / "ds", "data", config="default", split="train")
    assert res.rows == 2 and res.drops == {"undecodable_image": 1}  # 196 M pixels fit the default
    res = write_partition(df, tmp_path / "ds2", "data", config="default", split="train", max_image_pixels=10_000)
    assert res.rows == 1 and res.drops == {"image_too_large": 1, "undecodable_image": 1}
    assert res.examples == {"image_too_large": ["big"], "undecodable_image": ["cut"]}
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_image_changed_in_place_rebuilds(mp16_small, tmp_path, monkeypatch):
    from geodata.engine import build

    root = _mp16_root(tmp_path, mp16_small / "folder", images=True)
    monkeypatch.setenv("MP16_ROOT", str(root))
    out = tmp_path / "ds"
    first = build(PIPE, sets=["sample.n=15"], out=out)
    assert build(PIPE, sets=["sample.n=15"], out=out).status == "up to date"
    row = pl.read_parquet(out / "data" / "*.parquet").row(0, named=True)
    img = root / "images" / row["id"]
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 3])  # truncated in place: the folder's mtime does not change
    again = build(PIPE, sets=["sample.n=15"], out=out)
    assert again.status == "built"
    assert again.drops.get("undecodable_image", 0) == first.drops.get("undecodable_image", 0) + 1
    assert build(PIPE, sets=["sample.n=15"], out=out).status == "up to date"


def test_zero_rows_fail_even_when_drops_are_allowed(mp16_small, tmp_path, monkeypatch):
    from geodata.engine import build
    from geodata.errors import BuildError

    monkeypatch.setenv("MP16_ROOT", str(root := _mp16_root(tmp_path, mp16_small / "folder", images=True)))
    meta = next(root.glob("*.csv"))
    pl.read_csv(meta, infer_schema=False).with_columns(LAT=pl.lit("95.0")).write_csv(meta)  # every row off the globe
    with pytest.raises(BuildError, match=r"step '[^']+' left 0 of \d+ rows \(invalid_coordinates: \d+"):
        build(PIPE, sets=["max_drop_fraction=1"], out=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_thresholds_are_recorded_in_the_card(mp16_small, tmp_path, monkeypatch):
    from geodata.engine import build

    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    build(PIPE, sets=["sample.n=10", "max_drop_fraction=0.25"], out=tmp_path / "ds")
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "- limits: max_drop_fraction=0.25, max_image_pixels=400000000, min_prediction_coverage=0.5" in card
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["limits"]["max_drop_fraction"] == 0.25


def test_validate_fails_an_empty_dataset(tmp_path):
    from dataset_fixture import FEATURES, write_dataset

    folder = write_dataset(tmp_path / "datasets", "empty-set", {"default": {"train": [[]]}}, {"default": FEATURES})
    res = runner.invoke(app, ["validate", str(folder), "--no-rewards"])
    assert res.exit_code == 1 and "the dataset has 0 rows" in res.output, res.output


def test_shard_changed_in_place_rebuilds(mp16_small, tmp_path, monkeypatch):
    """msgpack references carry an image name (``…@off:len#NAME``): the shard is still fingerprinted."""
    from geodata.engine import build

    root = tmp_path / "mp16"
    shutil.copytree(mp16_small / "msgpack", root)
    monkeypatch.setenv("MP16_ROOT", str(root))
    out = tmp_path / "ds"
    build(PIPE, sets=["sample.n=15"], out=out)
    assert build(PIPE, sets=["sample.n=15"], out=out).status == "up to date"
    shards = sorted(root.rglob("shard_*.msg"))
    assert shards
    for s in shards:
        st = s.stat()
        os.utime(s, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert build(PIPE, sets=["sample.n=15"], out=out).status == "built"
