"""Every cross-view and EO source reads its public release as shipped, and builds a dataset.

The fixtures below are written by this file's own code from the public evidence cited in each
``catalogs/<source>.yaml`` (official loaders and devkits), in the release's folder structure —
never by the sources' sample writers. Each layout is built end to end with a two-step spec, and
the two pipelines are built from these fixtures to prove that no image of a held-out split
(validation, test) reaches a train split.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geodata.context import StepContext, StepOutput
from geodata.engine import build
from geodata.errors import SourceError
from geodata.registry import SOURCES, _load_all

_load_all()


# -- image writers ------------------------------------------------------------------------------
def _img(path: Path, size: tuple[int, int], seed: int, fmt: str | None = None) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGB").save(path, format=fmt)


def _png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG whose header declares ``w × h`` (no pixel data: only the size can be read)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _spec(tmp: Path, name: str, sources: dict, steps: list, output: dict) -> Path:
    import yaml

    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"name": name, "seed": 3, "sources": sources, "steps": steps, "output": output}))
    return p


def _mcq_spec(tmp: Path, reader: str, root: Path, **params) -> Path:
    return _spec(tmp, f"t-{reader}", {"x": {"reader": reader, "root": str(root), **params}},
                 [{"step": "concat_crossview"}, {"step": "crossview_mcq", "k": 3, "min_km": 0.1},
                  {"step": "split_guard"}],
                 {"config_by": "source", "split_by": "split", "metadata_columns": ["direction", "answer"]})


def _splits_built(out: Path) -> dict[str, int]:
    n: dict[str, int] = {}
    for f in out.rglob("*.parquet"):
        split = f.name.split("-")[0]
        n[split] = n.get(split, 0) + pl.read_parquet(f, columns=["id"]).height
    return n


def _read(name: str, root: Path, **kw) -> tuple[pl.DataFrame, StepOutput]:
    res = SOURCES[name].fn(StepContext(name=f"read:{name}"), root=root, **kw)
    return res.rows, res


# -- VIGOR (Jeff-Zilence/VIGOR data/DATASET.md, dataloader.py; tudelft-iv/SliceMatch) -------------
VIGOR_CENTRES = {"NewYork": (40.7359, -73.9911), "Chicago": (41.8781, -87.6298)}


def write_vigor(d: Path, *, labels: str = "splits__corrected", images: str = "release", n: int = 8) -> None:
    """Panoramas ~500 m apart; each with the 2×2 block of ~36 m tiles around it (positive first).

    Offsets are tile minus panorama in pixels, north and east positive, written like
    SliceMatch's corrected files (``23.0 -29.0``).
    """
    step, px = 0.000329, 640.0
    sfx = "__corrected" if labels == "splits__corrected" else ""
    rng = np.random.default_rng(1)
    for c, (city, (clat, clon)) in enumerate(VIGOR_CENTRES.items()):
        lines, tiles = [], set()
        for j in range(n):
            plat = round(clat + 0.005 * (j % 4) + rng.uniform(-3e-4, 3e-4), 6)
            plon = round(clon + 0.006 * (j // 4) + rng.uniform(-3e-4, 3e-4), 6)
            i0, j0 = np.floor(plat / step), np.floor(plon / step)
            block = [(float((i0 + a + 0.5) * step), float((j0 + b + 0.5) * step)) for a in (0, 1) for b in (0, 1)]
            block.sort(key=lambda t: (t[0] - plat) ** 2 + (t[1] - plon) ** 2)
            pano = f"p{c}x{j:02d}QwErTyUiOpAsDfGhJk,{plat:.6f},{plon:.6f},.jpg"
            fields = [pano]
            for tlat, tlon in block:
                name = f"satellite_{tlat!r}_{tlon!r}.png"
                tiles.add(name)
                fields += [name, f"{round((tlat - plat) / step * px):.1f}", f"{round((tlon - plon) / step * px):.1f}"]
            lines.append(" ".join(fields))
            g = d / city / "panorama" / pano if images == "release" else d / "ground" / city / pano
            _img(g, (32, 16), 100 * c + j)
        for t, name in enumerate(sorted(tiles)):
            s = d / city / "satellite" / name if images == "release" else d / "satellite" / city / name
            _img(s, (16, 16), 5000 + 100 * c + t)
        ld = d / labels / city
        ld.mkdir(parents=True, exist_ok=True)
        (ld / f"same_area_balanced_train{sfx}.txt").write_text("\n".join(lines[:5]) + "\n")
        (ld / f"same_area_balanced_test{sfx}.txt").write_text("\n".join(lines[5:]) + "\n")
        (ld / f"pano_label_balanced{sfx}.txt").write_text("\n".join(lines) + "\n")
        (ld / "satellite_list.txt").write_text("\n".join(sorted(tiles)) + "\n")


def test_vigor_corrected_labels_under_the_folder_above(tmp_path: Path) -> None:
    write_vigor(tmp_path / "VIGOR")
    df, ctx = _read("vigor", tmp_path)  # the folder above the release root
    assert ctx.notes["vigor.labels"] == "splits__corrected" and ctx.notes["vigor.image_layout"] == "release"
    assert df.height == 16 and df.group_by("split").len().sort("split").rows() == [("test", 6), ("train", 10)]
    off = np.array(df["sat_offset_px"].to_list())
    # tile minus panorama: a tile north / east of the panorama has positive offsets
    assert (np.sign(off[:, 0]) == np.sign(df["sat_lat"] - df["lat"]).to_numpy()).all()
    assert (np.sign(off[:, 1]) == np.sign(df["sat_lon"] - df["lon"]).to_numpy()).all()
    cross, _ = _read("vigor", tmp_path, area="cross")
    assert dict(cross.group_by("city").agg(pl.col("split").first()).iter_rows()) == {"NewYork": "train", "Chicago": "test"}


def test_vigor_release_splits_and_sample4geo_arrangement(tmp_path: Path) -> None:
    write_vigor(tmp_path, labels="splits", images="sample4geo")
    df, ctx = _read("vigor", tmp_path)
    assert df.height == 16 and ctx.notes["vigor.image_layout"] == "sample4geo"
    assert all(Path(p).is_file() for p in df["ground"]) and df["ground"].str.contains("/ground/NewYork/").any()


def test_vigor_two_label_folders_is_an_error(tmp_path: Path) -> None:
    write_vigor(tmp_path)
    (tmp_path / "splits").mkdir()
    with pytest.raises(SourceError, match="both splits/ and splits__corrected/ found"):
        _read("vigor", tmp_path)
    df, _ = _read("vigor", tmp_path, label_dir="splits__corrected")
    assert df.height == 16


def test_vigor_builds(tmp_path: Path) -> None:
    write_vigor(tmp_path / "VIGOR")
    res = build(_mcq_spec(tmp_path, "vigor", tmp_path), out=tmp_path / "out", force=True)
    assert set(_splits_built(tmp_path / "out")) == {"train", "test"} and res.rows > 0


# -- CVACT (Liumouliu/OriCNN input_data_ACT*.py; Skyy93/Sample4Geo sample4geo/dataset/cvact.py) --
def write_cvact(d: Path, n_train: int = 8, n_val: int = 4, n_test: int = 5, test: bool = True) -> list[str]:
    """``ACT_data.mat`` as the loaders index it, and the two image folders."""
    from scipy.io import savemat

    n = n_train + n_val + n_test
    rng = np.random.default_rng(2)
    ids = [f"{k:03d}" + "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz_-"), 19)) for k in range(n)]
    utm = np.stack([692500 + 350.0 * np.arange(n), 6091000 + 300.0 * (np.arange(n) % 3)], axis=1)
    tr, va, te = np.arange(n_train), np.arange(n_train, n_train + n_val), np.arange(n_train + n_val, n)
    # integer index columns: Sample4Geo indexes ``ids[anuData['trainSet'][0][0][1] - 1]`` with them
    mat = {"panoIds": np.array(ids), "utm": utm,
           "trainSet": {"trainNum": tr.size, "trainInd": (tr + 1).reshape(-1, 1).astype(np.int32)},
           "valSet": {"valNum": va.size, "valInd": (va + 1).reshape(-1, 1).astype(np.int32)}}
    if test:
        mat["valSetAll"] = {"valNum": te.size, "valInd": (te + 1).reshape(-1, 1).astype(np.int32)}
    d.mkdir(parents=True, exist_ok=True)
    savemat(str(d / "ACT_data.mat"), mat)
    for k, pid in enumerate(ids):
        folder = "ANU_data_test" if k >= n_train + n_val else "ANU_data_small"
        if folder == "ANU_data_test" and not test:
            continue
        _img(d / folder / "streetview" / f"{pid}_grdView.jpg", (32, 8), 200 + k)
        _img(d / folder / "satview_polish" / f"{pid}_satView_polish.jpg", (16, 16), 300 + k)
    return ids


def test_cvact_test_set_from_valsetall(tmp_path: Path) -> None:
    from scipy.io import loadmat

    ids = write_cvact(tmp_path / "CVACT")
    m = loadmat(str(tmp_path / "CVACT/ACT_data.mat"))  # the loaders' own indexing works on the fixture
    assert str(m["panoIds"][m["trainSet"][0][0][1] - 1].squeeze()[0]) == ids[0]
    df, ctx = _read("cvact", tmp_path)
    assert df.group_by("split").len().sort("split").rows() == [("test", 5), ("train", 8), ("validation", 4)]
    test = df.filter(pl.col("split") == "test")
    assert all("/ANU_data_test/" in p for p in test["ground"]) and test["id"][0].startswith("cvact/test/")
    assert ctx.notes["cvact.image_layout"] == "ANU_data_small, ANU_data_test"


def test_cvact_without_test_release(tmp_path: Path) -> None:
    write_cvact(tmp_path, test=False)
    df, ctx = _read("cvact", tmp_path)
    assert set(df["split"]) == {"train", "validation"} and "cvact.test" in ctx.notes
    with pytest.raises(SourceError, match="valSetAll' missing|ANU_data_test"):
        _read("cvact", tmp_path, splits=["test"])


def test_cvact_builds(tmp_path: Path) -> None:
    write_cvact(tmp_path)
    build(_mcq_spec(tmp_path, "cvact", tmp_path), out=tmp_path / "out", force=True)
    assert set(_splits_built(tmp_path / "out")) == {"train", "validation", "test"}


# -- CV-Cities (GaoShuang98/CVCities cvcities_base/dataset/cvcities.py, train/train_cvcities.py) --
def write_cvcities(d: Path, cities: dict[str, tuple[float, float]], n: int = 5) -> None:
    for c, (city, (lat0, lon0)) in enumerate(cities.items()):
        lines = []
        for j in range(n):
            name = f"{city}_{j:06d}"
            lat, lon = lat0 + 0.004 * j, lon0 + 0.003 * (j % 2)
            sat, pano = f"{city}/satellite/{name}.png", f"{city}/panorama/{name}.jpg"
            lines.append(f"{name},{lon:.7f},{lat:.7f},{city},{sat},{pano}")  # no header
            _img(d / sat, (16, 16), 700 + 10 * c + j)
            _img(d / pano, (32, 16), 900 + 10 * c + j)
        (d / city / "img_info.csv").write_text("\n".join(lines) + "\n")


CVC = {"captown": (-33.92, 18.42), "tokyo": (35.68, 139.69), "london": (51.50, -0.12),
       "singapore": (1.35, 103.82), "tainan": (22.99, 120.21)}


def test_cvcities_official_protocol(tmp_path: Path) -> None:
    write_cvcities(tmp_path / "CV-Cities", CVC)
    df, ctx = _read("cvcities", tmp_path)
    split = dict(df.group_by("city").agg(pl.col("split").first()).iter_rows())
    assert split == {"captown": "train", "tokyo": "train", "london": "test", "singapore": "test"}
    assert ctx.drops == {"city_outside_protocol": 5}  # tainan: not opened, in neither list
    assert df["lon"].is_between(-1, 140).all() and df["lat"].is_between(-34, 52).all()


def test_cvcities_builds(tmp_path: Path) -> None:
    write_cvcities(tmp_path, CVC)
    build(_mcq_spec(tmp_path, "cvcities", tmp_path), out=tmp_path / "out", force=True)
    assert set(_splits_built(tmp_path / "out")) == {"train", "test"}


# -- CVUSA (Skyy93/Sample4Geo sample4geo/dataset/cvusa.py) ----------------------------------------
def write_cvusa(d: Path, n: int = 12) -> None:
    rows, locs = [], []
    for i in range(n):
        num = f"{i + 1:07d}"
        rows.append(f"bingmap/19/{num}.jpg,streetview/panos/{num}.jpg,streetview/annotations/{num}.png")
        lat, lon = 38.25 + 0.004 * i, -85.76 + 0.002 * (i % 3)
        locs.append(f"{lat:.6f},{lon:.6f},{lat:.6f},{lon:.6f},0")
        _img(d / f"bingmap/19/{num}.jpg", (16, 16), 40 + i)
        _img(d / f"streetview/panos/{num}.jpg", (32, 8), 80 + i)
    (d / "splits").mkdir(parents=True)
    (d / "splits/train-19zl.csv").write_text("\n".join(rows[:8]) + "\n")
    (d / "splits/val-19zl.csv").write_text("\n".join(rows[8:]) + "\n")
    (d / "split_locations").mkdir()
    (d / "split_locations/all.csv").write_text("\n".join(locs) + "\n")


def test_cvusa_split_files_build(tmp_path: Path) -> None:
    write_cvusa(tmp_path / "CVUSA_subset")
    df, _ = _read("cvusa", tmp_path)
    assert df.group_by("split").len().sort("split").rows() == [("train", 8), ("validation", 4)]
    build(_mcq_spec(tmp_path, "cvusa", tmp_path), out=tmp_path / "out", force=True)
    assert set(_splits_built(tmp_path / "out")) == {"train", "validation"}


# -- DOTA (CAPTAIN-WHU/DOTA_devkit ImgSplit.py; open-mmlab/mmrotate tools/data/dota/split) --------
def test_dota_mmrotate_annfiles_and_devkit_windows(tmp_path: Path) -> None:
    # mmrotate img_split.py: <save_dir>/images + <save_dir>/annfiles, '<id>__1024__<x>___<y>'
    mm = tmp_path / "split_ss_dota" / "train"
    _img(mm / "images" / "P0001__1024__0___0.png", (128, 128), 1, "PNG")
    (mm / "annfiles").mkdir(parents=True)
    (mm / "annfiles" / "P0001__1024__0___0.txt").write_text(
        "10.0 10.0 40.0 10.0 40.0 30.0 10.0 30.0 plane 0\n"
        "100.0 50.0 128.0 50.0 128.0 70.0 100.0 70.0 ship 2\n"
        "60.0 60.0 90.0 60.0 90.0 90.0 60.0 90.0 storage-tank 1\n")
    df, ctx = _read("dota", tmp_path / "split_ss_dota")
    assert df.height == 3 and df["difficulty"].to_list() == [0, 2, 1]
    assert df["truncated"].to_list() == [False, True, False] and df["difficult"].to_list() == [False, False, True]
    assert "annfiles" in ctx.notes["dota.image_layout"] and "window files" in ctx.notes["dota.image_layout"]
    # DOTA_devkit ImgSplit.py output: images + labelTxt, '<id>__1__<left>___<up>', no header lines
    dk = tmp_path / "examplesplit"
    _img(dk / "images" / "P0706__1__0___0.png", (96, 96), 2, "PNG")
    (dk / "labelTxt").mkdir(parents=True)
    (dk / "labelTxt" / "P0706__1__0___0.txt").write_text("1 1 30 1 30 20 1 20 small-vehicle 2\n5 40 50 40 50 60 5 60 harbor 0\n")
    df, _ = _read("dota", dk)
    assert df["difficulty"].to_list() == [2, 0] and set(df["split"]) == {"train"}


def test_dota_huge_image_size_without_bomb_error(tmp_path: Path) -> None:
    _png_header_only(tmp_path / "train/images/P9999.png", 20000, 20000)  # DOTA-v2 size, header only
    (tmp_path / "train/labelTxt").mkdir(parents=True)
    (tmp_path / "train/labelTxt/P9999.txt").write_text(
        "imagesource:GoogleEarth\ngsd:0.12\n19000 19000 19500 19000 19500 19400 19000 19400 plane 0\n")
    df, _ = _read("dota", tmp_path)
    assert (df["width"][0], df["height"][0]) == (20000, 20000)
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS is not None  # the guard is back for everyone else


def write_dota_raw(d: Path) -> None:
    """A 1400×1100 release image: windows start at x 0, 376 and y 0, 76 (1024 / gap 200)."""
    _img(d / "train/images/P0005.png", (1400, 1100), 5, "PNG")
    (d / "train/labelTxt").mkdir(parents=True)
    (d / "train/labelTxt/P0005.txt").write_text(
        "imagesource:GoogleEarth\ngsd:0.146\n"
        "100 100 160 100 160 140 100 140 plane 0\n"       # only in windows starting at x 0
        "1000 500 1060 500 1060 540 1000 540 ship 0\n"    # cut by x = 1024: 40 % inside x 0, whole at x 376
        "1300 1000 1350 1000 1350 1050 1300 1050 storage-tank 1\n")
    _img(d / "val/images/P0006.png", (300, 200), 6, "PNG")  # smaller than a window: kept as is
    (d / "val/labelTxt").mkdir(parents=True)
    (d / "val/labelTxt/P0006.txt").write_text("10 10 50 10 50 40 10 40 plane 0\n")


def _plant_broken_headers(d: Path) -> None:
    """Two raw DOTA images whose header cannot be read, beside write_dota_raw's good ones: an
    interrupted download (0 bytes) and a file that is not an image at all (an HTML error page)."""
    (d / "train/images/P0010.png").write_bytes(b"")
    (d / "train/images/P0011.png").write_bytes(b"<html><body>503 Service Unavailable</body></html>\n")
    for stem in ("P0010", "P0011"):
        (d / "train/labelTxt" / f"{stem}.txt").write_text(
            "imagesource:GoogleEarth\ngsd:0.146\n"
            "100 100 160 100 160 140 100 140 plane 0\n"
            "300 300 360 300 360 340 300 340 ship 0\n"
            "500 500 560 500 560 540 500 540 small-vehicle 0\n")


def test_dota_image_with_a_broken_header_is_a_counted_drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dota_raw(tmp_path / "DOTA")
    _plant_broken_headers(tmp_path / "DOTA")
    with pytest.raises(SourceError, match=r"P0010\.png: cannot read image size"):
        _read("dota", tmp_path / "DOTA")  # on_error: raise (the default) names the file
    df, res = _read("dota", tmp_path / "DOTA", on_error="skip")
    assert res.drops["dota: undecodable image"] == 6  # the 3 objects of each broken image
    assert set(df["image_id"]) == {"P0005", "P0006"} and df.height == 4
    assert [Path(p).name for p in res.notes["dota.undecodable_examples"]] == ["P0010.png", "P0011.png"]
    # the whole eo-instruct build (on_error: skip for DOTA) goes on and counts them
    monkeypatch.setenv("DOTA_ROOT", str(tmp_path / "DOTA"))
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    r = build("eo-instruct", out=tmp_path / "out", force=True, sets=["max_drop_fraction=0.9"])
    assert r.status == "built" and r.drops["dota: undecodable image"] == 6
    steps = {s["step"]: s for s in json.loads((tmp_path / "out" / "manifest.json").read_text())["stats"]["steps"]}
    assert steps["read:dota"]["drops"]["dota: undecodable image"] == 6
    det = pl.concat([pl.read_parquet(f) for f in (tmp_path / "out" / "detection").glob("*.parquet")])
    shown = set(det.filter(pl.col("source") == "dota")["id"].str.extract(r"(P\d{4})").to_list())
    assert shown and shown <= {"P0005", "P0006"}


def test_eo_tiles_cuts_windows_with_clipped_objects(tmp_path: Path) -> None:
    from geodata.steps.eo_tiles import eo_tiles

    write_dota_raw(tmp_path / "DOTA")
    df, _ = _read("dota", tmp_path / "DOTA")
    ctx = eo_tiles(df, StepContext(name="eo_tiles"), sources=["dota"], window=1024, gap=200,
                   out_dir=str(tmp_path / "tiles"), dota=df)
    t = ctx.provides["dota"]
    train = t.filter(pl.col("split") == "train")
    assert set(train["width"]) == {1024} and set(train["height"]) == {1024}
    assert set(train["image_id"]) <= {f"P0005__1024__{x}___{y}" for x in (0, 376) for y in (0, 76)}
    ship = train.filter(pl.col("raw_category") == "ship")
    assert ship["image_id"].str.contains("__376___").all() and not ship["truncated"].any()
    assert ctx.drops["dota: object cut below min_area_frac"] >= 1  # the ship's 40 % in the x-0 windows
    # window images are real files of the window size, with the source's pixels
    from PIL import Image

    r = train.filter(pl.col("raw_category") == "plane").row(0, named=True)
    with Image.open(r["image"]) as w, Image.open(tmp_path / "DOTA/train/images/P0005.png") as raw:
        x, y = (int(v) for v in r["image_id"].split("__1024__")[1].split("___"))
        assert w.size == (1024, 1024) and np.array_equal(np.asarray(w), np.asarray(raw.crop((x, y, x + 1024, y + 1024))))
    q = np.array(r["quad"]).reshape(4, 2)
    assert q.min() >= 0 and q.max() <= 1024
    assert t.filter(pl.col("split") == "validation")["image_id"].to_list() == ["P0006"]


def test_eo_tiles_keeps_partial_objects_above_threshold(tmp_path: Path) -> None:
    from geodata.steps.eo_tiles import eo_tiles

    write_dota_raw(tmp_path / "DOTA")
    df, _ = _read("dota", tmp_path / "DOTA")
    res = eo_tiles(df, StepContext(name="eo_tiles"), window=1024, gap=200, min_area_frac=0.3,
                   out_dir=str(tmp_path / "tiles"), dota=df)
    ship = res.provides["dota"].filter(pl.col("raw_category") == "ship")
    part = ship.filter(pl.col("truncated"))
    assert part.height >= 1 and set(part["difficulty"]) == {2} and part["image_id"].str.contains("__0___").all()
    b = np.array(part["box"].to_list())
    assert (b[:, :4] >= 0).all() and (b[:, :4] <= 100).all()


# -- LEVIR-CD (microsoft/torchgeo torchgeo/datasets/levircd.py) -----------------------------------
def _levir_pair(a: Path, b: Path, lab: Path, seed: int, changed: bool) -> None:
    from PIL import Image

    _img(a, (16, 16), seed, "PNG")
    _img(b, (16, 16), seed + (50 if changed else 0), "PNG")
    m = np.zeros((16, 16), np.uint8)
    if changed:
        m[2:8, 3:9] = 255
    lab.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m, "L").save(lab)


def test_levir_cd_torchgeo_and_release_forms(tmp_path: Path) -> None:
    tg = tmp_path / "torchgeo" / "LEVIR-CD"
    for i, split in enumerate(["train", "train", "val", "test"]):
        name = f"{split}_{i + 1}.png"
        _levir_pair(tg / "A" / name, tg / "B" / name, tg / "label" / name, 10 + i, i % 2 == 0)
    df, ctx = _read("levir_cd", tmp_path / "torchgeo")
    assert ctx.notes["levir_cd.image_layout"] == "torchgeo"
    assert df.group_by("split").len().sort("split").rows() == [("test", 1), ("train", 2), ("validation", 1)]
    rel = tmp_path / "release"
    for i, split in enumerate(["train", "val", "test"]):
        _levir_pair(rel / split / "A" / "a_1.png", rel / split / "B" / "a_1.png", rel / split / "label" / "a_1.png", 30 + i, True)
    df, ctx = _read("levir_cd", rel)
    assert ctx.notes["levir_cd.image_layout"] == "release" and df.height == 3
    (rel / "A").mkdir()
    with pytest.raises(SourceError, match="ambiguous LEVIR-CD root"):
        _read("levir_cd", rel)


# -- GeoChat-Instruct (mbzuai-oryx/GeoChat scripts; MBZUAI/GeoChat_Instruct images.zip) -----------
GEOCHAT_DIR = "share/softwares/kartik/GeoChat_finetuning/final_images_llava"


def write_geochat(d: Path, image_dir: str = GEOCHAT_DIR) -> None:
    recs = [{"id": "P0003_0002", "image": "P0003_0002.png", "conversations": [
        {"from": "human", "value": "<image>\n[refer] give me the location of <p>the ship</p>"},
        {"from": "gpt", "value": "<p>the ship</p> {<8><20><30><41>|<-45>}"}]},
        {"id": "UCM_beach00", "image": "beach00.png", "conversations": [
            {"from": "human", "value": "<image>\nIs there a beach?"}, {"from": "gpt", "value": "Yes"}]}]
    d.mkdir(parents=True, exist_ok=True)
    (d / "GeoChat_Instruct.json").write_text(json.dumps(recs))
    for i, r in enumerate(recs):
        _img(d / image_dir / r["image"], (24, 24), 60 + i, "PNG")


def test_geochat_finds_the_unpacked_images_zip(tmp_path: Path) -> None:
    write_geochat(tmp_path)
    df, ctx = _read("geochat_instruct", tmp_path)
    assert df.height == 2 and ctx.drops == {}
    assert ctx.notes["geochat_instruct.image_layout"] == GEOCHAT_DIR
    write_geochat(tmp_path / "b", image_dir="images/" + GEOCHAT_DIR)  # unzipped into images/
    assert _read("geochat_instruct", tmp_path / "b")[0].height == 2


def test_geochat_without_images_is_an_error_naming_the_folders(tmp_path: Path) -> None:
    write_geochat(tmp_path, image_dir="elsewhere")
    with pytest.raises(SourceError, match=r"none of the 2 GeoChat images found \(looked in .*final_images_llava \(absent\)"):
        _read("geochat_instruct", tmp_path)


# -- RSVQA (syvlo/RSVQA; Zenodo 6344334 / 6344367) ------------------------------------------------
def write_rsvqa(d: Path, prefix: str, image_dir: str, splits: dict[str, list[int]]) -> None:
    """Global ids over all splits; each split file holds stubs ``{"id", "active": false}`` elsewhere."""
    imgs = sorted(i for v in splits.values() for i in v)
    qs = [(k, img, split) for split, v in splits.items() for img in v for k in range(2)]
    for split, own in splits.items():
        questions, answers = [], []
        for qid, (k, img, s) in enumerate(qs):
            if s != split:
                questions.append({"id": qid, "active": False})
                answers.append({"id": qid, "active": False})
                continue
            questions.append({"id": qid, "date_added": 1.0, "img_id": img, "people_id": 0,
                              "type": ["presence", "count"][k], "question": ["Is there a road?", "How many buildings are there?"][k],
                              "answers_ids": [qid], "active": True})
            answers.append({"id": qid, "date_added": 1.0, "question_id": qid, "people_id": 0,
                            "answer": ["yes", "3"][k], "active": True})
        images = [{"id": i, "date_added": 1.0, "people_id": 0, "active": True,
                   "questions_ids": [q for q, (_, img, s) in enumerate(qs) if img == i]} if i in own
                  else {"id": i, "active": False} for i in imgs]
        for name, obj in (("questions", questions), ("answers", answers), ("images", images)):
            (d / f"{prefix}_{split}_{name}.json").parent.mkdir(parents=True, exist_ok=True)
            (d / f"{prefix}_{split}_{name}.json").write_text(json.dumps({name: obj}))
    for i in imgs:
        _img(d / image_dir / f"{i}.tif", (16, 16), 400 + i + len(prefix), "TIFF")


def test_rsvqa_hr_four_split_files_and_stubs(tmp_path: Path) -> None:
    write_rsvqa(tmp_path / "RSVQA-HR", "USGS_split", "Data", {"train": [0, 1], "val": [2], "test": [3], "test_phili": [4]})
    df, ctx = _read("rsvqa_hr", tmp_path)
    assert ctx.drops == {}  # stubs are not drops
    # stubs per file: the other splits' questions and answers (10 - 2·own each) and images (5 - own)
    assert ctx.notes["rsvqa_hr.stubs"] == (6 + 6 + 3) + 3 * (8 + 8 + 4)
    assert df.group_by("split").len().sort("split").rows() == [("test", 4), ("train", 4), ("validation", 2)]
    assert set(df.filter(pl.col("split") == "test")["qid"].str.extract(r"^(\w+?)-\d+$")) == {"test", "test_phili"}


def test_rsvqa_lr(tmp_path: Path) -> None:
    write_rsvqa(tmp_path, "LR_split", "Images_LR", {"train": [0, 1], "val": [2], "test": [3]})
    df, ctx = _read("rsvqa_lr", tmp_path)
    assert df.height == 8 and ctx.drops == {}


# -- the pipelines: official splits as HF splits, and no held-out image in train -----------------
def _image_digests(out: Path) -> dict[str, set[str]]:
    by: dict[str, set[str]] = {}
    for f in out.rglob("*.parquet"):
        split = f.name.split("-")[0]
        for imgs in pl.read_parquet(f, columns=["images"])["images"].to_list():
            for im in imgs or []:
                by.setdefault(split, set()).add(hashlib.sha256(im["bytes"]).hexdigest())
    return by


def _assert_no_leak(out: Path) -> dict[str, set[str]]:
    by = _image_digests(out)
    assert by.get("train"), "no train images were built"
    for held in ("validation", "test"):
        assert not (by["train"] & by.get(held, set())), f"{held} images in train"
    return by


def test_crossview_pipeline_builds_official_splits_without_leaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_vigor(tmp_path / "vigor" / "VIGOR")
    write_cvact(tmp_path / "cvact")
    write_cvcities(tmp_path / "cvcities", CVC)
    write_cvusa(tmp_path / "cvusa")
    for name in ("vigor", "cvact", "cvcities", "cvusa"):
        monkeypatch.setenv(SOURCES[name].env, str(tmp_path / name))
    res = build("crossview-pairs", sets=["crossview_mcq.k=3", "crossview_mcq.min_km=0.1"], out=tmp_path / "out", force=True)
    assert res.configs["cvact"].keys() == {"train", "validation", "test"}
    assert res.configs["vigor"].keys() == {"train", "test"} and res.configs["cvcities"].keys() == {"train", "test"}
    by = _assert_no_leak(tmp_path / "out")
    assert by["test"] and by["validation"]


def test_eo_pipeline_builds_official_splits_and_drops_shared_test_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dota_raw(tmp_path / "dota")
    write_geochat(tmp_path / "geochat")
    write_rsvqa(tmp_path / "rsvqa_hr", "USGS_split", "Data", {"train": [0, 1], "test": [3], "test_phili": [4]})
    # UC Merced's scene images are UCM-Captions' images: one of them is in UCM-Captions' test split
    for i, c in enumerate(("airplane", "beach")):
        for j in range(2):
            _img(tmp_path / "ucm/Images" / c / f"{c}{j:02d}.tif", (16, 16), 1000 + 10 * i + j, "TIFF")
    (tmp_path / "ucm_captions/imgs").mkdir(parents=True)
    (tmp_path / "ucm_captions/imgs/1.tif").write_bytes((tmp_path / "ucm/Images/airplane/airplane00.tif").read_bytes())
    _img(tmp_path / "ucm_captions/imgs/2.tif", (16, 16), 77, "TIFF")
    sents = lambda t: [{"tokens": t.split(), "raw": t, "imgid": 0, "sentid": 0}]  # noqa: E731
    (tmp_path / "ucm_captions/dataset.json").write_text(json.dumps({"images": [
        {"filename": "1.tif", "imgid": 0, "split": "test", "sentids": [0], "sentences": sents("an airplane on a runway .")},
        {"filename": "2.tif", "imgid": 1, "split": "train", "sentids": [1], "sentences": sents("a sandy beach .")}]}))
    for name, folder in (("dota", "dota"), ("geochat_instruct", "geochat"), ("rsvqa_hr", "rsvqa_hr"),
                         ("ucm", "ucm"), ("ucm_captions", "ucm_captions")):
        monkeypatch.setenv(SOURCES[name].env, str(tmp_path / folder))
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    res = build("eo-instruct", out=tmp_path / "out", force=True)
    assert res.drops["held_out_image_in_train"] == 1  # ucm airplane00 (scene_cls, train) is a caption test image
    assert res.configs["vqa"].keys() >= {"train", "test"} and "test" in res.configs["image_caption"]
    assert res.notes["eo_tiles.dota"]["windows"] >= 2
    mix = res.notes["mixture"]
    assert all(m["rows"] <= m["available"] for m in mix.values())
    _assert_no_leak(tmp_path / "out")
    # the DOTA windows, not the raw 1400×1100 image, are what the detection rows show
    det = pl.concat([pl.read_parquet(f) for f in (tmp_path / "out" / "detection").glob("train-*.parquet")])
    from PIL import Image
    import io

    sizes = {Image.open(io.BytesIO(im[0]["bytes"])).size for im in det.filter(pl.col("source") == "dota")["images"].to_list()}
    assert sizes == {(1024, 1024)}


# -- catalogs ------------------------------------------------------------------------------------
RELEASE_SOURCES = ("vigor", "cvact", "cvcities", "cvusa", "dota", "levir_cd", "geochat_instruct", "rsvqa_lr", "rsvqa_hr")


@pytest.mark.parametrize("name", RELEASE_SOURCES)
def test_catalog_cites_evidence_and_prints_the_layout_as_text(name: str, repo: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from geodata.cli import app

    entry = yaml.safe_load((repo / "catalogs" / f"{name}.yaml").read_text())
    assert entry["evidence"] and all("/" in e for e in entry["evidence"]) and entry["unverified"] and entry["splits"]
    res = CliRunner().invoke(app, ["catalog", name])
    assert res.exit_code == 0, res.output
    first = entry["layout"].splitlines()[1].strip()
    assert any(line.strip() == first for line in res.output.splitlines())  # a layout line as written, unescaped
    assert "\\n" not in res.output


def test_split_guard_drops_train_rows_showing_a_test_tile(tmp_path: Path) -> None:
    # VIGOR same-area: a test panorama whose tiles are also a training panorama's tiles
    write_vigor(tmp_path)
    ld = tmp_path / "splits__corrected" / "NewYork"
    train = (ld / "same_area_balanced_train__corrected.txt").read_text().splitlines()
    fields = train[0].split(" ")
    twin = fields[0].replace("QwErTy", "ZxCvBn")
    _img(tmp_path / "NewYork/panorama" / twin, (32, 16), 999)
    test_file = ld / "same_area_balanced_test__corrected.txt"
    test_file.write_text(test_file.read_text() + " ".join([twin, *fields[1:]]) + "\n")
    res = build(_mcq_spec(tmp_path, "vigor", tmp_path), out=tmp_path / "out", force=True)
    assert res.drops["held_out_image_in_train"] >= 1
    _assert_no_leak(tmp_path / "out")
