"""Cross-view sources (CVUSA, CVACT, VIGOR, CV-Cities) and the Geo-R1 pairing proxy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geodata.context import StepContext, StepOutput
from geodata.errors import BuildError, SourceError
from geodata.geo import haversine, haversine_matrix
from geodata.sources.crossview import cvact, cvcities, cvusa, vigor
from geodata.steps.crossview import concat_crossview, crossview_mcq, pick_negatives

READERS = {
    "cvusa": (cvusa.read_cvusa, cvusa.write_sample),
    "cvact": (cvact.read_cvact, cvact.write_sample),
    "vigor": (vigor.read_vigor, vigor.write_sample),
    "cvcities": (cvcities.read_cvcities, cvcities.write_sample),
}
#: pairs in each sample and the one planted hole
EXPECTED = {
    "cvusa": (23, "missing_satellite_image"),
    "cvact": (25, "missing_ground_image"),  # train, validation and test (ANU_data_test)
    "vigor": (31, "missing_ground_image"),
    "cvcities": (23, "missing_satellite_image"),
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, (_, write) in READERS.items():
        d = tmp_path_factory.mktemp(name)
        write(d)
        out[name] = d
    return out


@pytest.fixture(scope="module")
def tables(samples: dict[str, Path]) -> dict[str, pl.DataFrame]:
    return {n: READERS[n][0](StepContext(), root=samples[n]).rows for n in READERS}


def _read(name: str, root: Path, **kw) -> tuple[pl.DataFrame, StepOutput]:
    res = READERS[name][0](StepContext(name=f"read:{name}"), root=root, **kw)
    return res.rows, res


# -- sources -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(READERS))
def test_source_reads_sample_in_real_layout(name: str, samples: dict[str, Path]) -> None:
    df, ctx = _read(name, samples[name])
    n, hole = EXPECTED[name]
    assert df.height == n
    assert df.columns[:10] == ["id", "source", "city", "split", "lat", "lon", "sat_lat", "sat_lon",
                               "ground", "satellite"]
    assert df["id"].is_unique().all()
    assert (df["source"] == name).all()
    assert ctx.drops == {hole: 1}
    for col in ("ground", "satellite"):
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in df[col])
    assert df["lat"].is_between(-90, 90).all() and df["lon"].is_between(-180, 180).all()
    # the satellite tile is close to its ground view in every set
    km = haversine(df["lat"].to_numpy(), df["lon"].to_numpy(), df["sat_lat"].to_numpy(), df["sat_lon"].to_numpy())
    assert km.max() < 0.1


def test_cvusa_locations_by_row(samples: dict[str, Path]) -> None:
    df, _ = _read("cvusa", samples["cvusa"])
    rows = (samples["cvusa"] / "split_locations/all.csv").read_text().splitlines()
    r = df.filter(pl.col("id") == "cvusa/0000007").row(0, named=True)
    sat_lat, sat_lon, lat, lon = map(float, rows[6].split(",")[:4])  # row = id - 1
    assert (r["lat"], r["lon"], r["sat_lat"], r["sat_lon"]) == (lat, lon, sat_lat, sat_lon)
    assert sorted(df["split"].unique()) == ["train", "validation"]


def test_cvusa_without_locations_has_null_coords(samples: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "cvusa"
    shutil.copytree(samples["cvusa"], d)
    (d / "split_locations/all.csv").unlink()
    df, ctx = _read("cvusa", d)
    assert df.height == 23 and df["lat"].is_null().all()
    with pytest.raises(BuildError, match=r"no multiple-choice rows.*dropped \{'no_coordinates': 23\}\)"):
        crossview_mcq(df, StepContext(name="crossview_mcq"))


def test_cvact_utm_to_canberra(tables: dict[str, pl.DataFrame]) -> None:
    df = tables["cvact"]
    assert df["lat"].is_between(-35.4, -35.2).all()
    assert df["lon"].is_between(149.0, 149.3).all()
    assert sorted(df["split"].unique()) == ["test", "train", "validation"]
    assert (df["city"] == "Canberra").all()


def test_cvact_swapped_utm_columns(samples: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from scipy.io import loadmat, savemat

    d = tmp_path / "cvact"
    shutil.copytree(samples["cvact"], d)
    m = loadmat(str(d / "ACT_data.mat"))
    savemat(str(d / "ACT_data.mat"), {"panoIds": m["panoIds"], "utm": m["utm"][:, ::-1],
                                      "trainSet": m["trainSet"], "valSet": m["valSet"]})
    df, ctx = _read("cvact", d)
    ref, _ = _read("cvact", samples["cvact"], splits=["train", "val"])
    assert np.allclose(df["lat"].to_numpy(), ref["lat"].to_numpy())
    assert "cvact.utm_columns" in ctx.notes


def test_vigor_semi_positives_and_coords(tables: dict[str, pl.DataFrame]) -> None:
    df = tables["vigor"]
    assert sorted(df["city"].unique()) == sorted(vigor.CITIES)
    assert (df["semi_positives"].list.len() == 3).all()
    r = df.row(0, named=True)
    name = Path(r["ground"]).name
    _, lat, lon, _ = name.split(",")
    assert (r["lat"], r["lon"]) == (float(lat), float(lon))
    assert Path(r["satellite"]).name == f"satellite_{r['sat_lat']!r}_{r['sat_lon']!r}.png"


def test_vigor_cross_area(samples: dict[str, Path]) -> None:
    df, _ = _read("vigor", samples["vigor"], area="cross")
    split = dict(df.group_by("city").agg(pl.col("split").first()).iter_rows())
    assert split == {"NewYork": "train", "Seattle": "train", "SanFrancisco": "test", "Chicago": "test"}


def test_cvcities_test_cities(samples: dict[str, Path]) -> None:
    df, _ = _read("cvcities", samples["cvcities"], test_cities=["paris"])
    assert df.filter(pl.col("city") == "paris")["split"].unique().to_list() == ["test"]
    assert set(df.filter(pl.col("city") != "paris")["split"]) == {"train"}


# -- bad input -----------------------------------------------------------------------------
def _copy(samples: dict[str, Path], name: str, tmp_path: Path) -> Path:
    import shutil

    d = tmp_path / name
    shutil.copytree(samples[name], d)
    return d


def test_cvusa_wrong_field_count_names_file_and_line(samples: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(samples, "cvusa", tmp_path)
    f = d / "splits/train-19zl.csv"
    lines = f.read_text().splitlines()
    lines[3] = "bingmap/19/0000004.jpg,streetview/panos/0000004.jpg"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"train-19zl\.csv:4: expected 3 comma-separated fields, found 2"):
        _read("cvusa", d)
    df, ctx = _read("cvusa", d, on_bad_line="skip")
    assert df.height == 22 and ctx.drops["malformed_line"] == 1


def test_vigor_satellite_without_coordinates(samples: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(samples, "vigor", tmp_path)
    f = d / "splits__corrected/Seattle/same_area_balanced_train__corrected.txt"
    lines = f.read_text().splitlines()
    fields = lines[2].split(" ")
    fields[1] = "satellite_tile.png"
    lines[2] = " ".join(fields)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"Seattle/same_area_balanced_train__corrected\.txt:3: satellite name 'satellite_tile\.png' has no coordinates"):
        _read("vigor", d)
    _, ctx = _read("vigor", d, on_bad_line="skip")
    assert ctx.drops["malformed_line"] == 1


def test_vigor_wrong_field_count(samples: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(samples, "vigor", tmp_path)
    f = d / "splits__corrected/Chicago/same_area_balanced_test__corrected.txt"
    lines = f.read_text().splitlines()
    lines[1] = " ".join(lines[1].split(" ")[:10])
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"same_area_balanced_test__corrected\.txt:2: expected 13 space-separated fields, found 10"):
        _read("vigor", d)


def test_cvact_unreadable_mat(samples: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(samples, "cvact", tmp_path)
    (d / "ACT_data.mat").write_bytes(b"not a matlab file" * 10)
    with pytest.raises(SourceError, match=r"ACT_data\.mat: unreadable \.mat file"):
        _read("cvact", d)


def test_cvact_missing_key(samples: dict[str, Path], tmp_path: Path) -> None:
    from scipy.io import loadmat, savemat

    d = _copy(samples, "cvact", tmp_path)
    m = loadmat(str(d / "ACT_data.mat"))
    savemat(str(d / "ACT_data.mat"), {"panoIds": m["panoIds"], "utm": m["utm"], "trainSet": m["trainSet"]})
    with pytest.raises(SourceError, match=r"ACT_data\.mat: key 'valSet' missing"):
        _read("cvact", d)
    df, _ = _read("cvact", d, splits=["train"])
    assert set(df["split"]) == {"train"}


def test_cvcities_bad_coordinate(samples: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(samples, "cvcities", tmp_path)
    f = d / "london/img_info.csv"
    lines = f.read_text().splitlines()
    parts = lines[4].split(",")
    parts[2] = "north"
    lines[4] = ",".join(parts)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"london/img_info\.csv:5: longitude/latitude do not parse"):
        _read("cvcities", d)


# -- pairing -------------------------------------------------------------------------------
def _mcq(tables: dict[str, pl.DataFrame], seed: int = 0, **kw) -> tuple[pl.DataFrame, StepOutput]:
    df = concat_crossview(tables["cvusa"], StepContext(seed=seed, name="concat_crossview"), **tables).rows
    res = crossview_mcq(df, StepContext(seed=seed, name="crossview_mcq"), **kw)
    return res.rows, res


def _pairs(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([t.select("id", "ground", "satellite") for t in tables.values()])


@pytest.mark.parametrize("kw", [{}, {"k": 3, "hard_ratio": 1.0}, {"k": 5, "hard_ratio": 0.0, "min_km": 1.0}])
def test_every_row_has_one_true_candidate_and_no_near_negative(tables: dict[str, pl.DataFrame], kw: dict) -> None:
    out, ctx = _mcq(tables, **kw)
    k = kw.get("k", 4)
    min_km = kw.get("min_km", 0.25)
    pairs = _pairs(tables)
    lost = ctx.drops.get("too_few_candidates", 0)
    assert out.height + lost == 2 * pairs.height  # both directions
    assert lost == 0 or min_km >= 1.0  # the small CVACT val pool cannot hold 4 tiles 1 km apart
    truth = {r["id"]: r for r in pairs.iter_rows(named=True)}
    semi = {r["id"]: set(r["semi_positives"]) for r in tables["vigor"].iter_rows(named=True)}
    coords = pl.concat([t.select("ground", "satellite", "lat", "lon", "sat_lat", "sat_lon") for t in tables.values()])
    where = {r["satellite"]: (r["sat_lat"], r["sat_lon"]) for r in coords.iter_rows(named=True)}
    where.update({r["ground"]: (r["lat"], r["lon"]) for r in coords.iter_rows(named=True)})
    for r in out.iter_rows(named=True):
        base, _, d = r["id"].rpartition("/")
        pair = truth[base]
        query, cands = r["images"][0], r["images"][1:]
        assert len(cands) == k and len(set(cands)) == k
        if d == "g2s":
            assert query == pair["ground"]
            true = [i for i, c in enumerate(cands) if c == pair["satellite"]]
        else:
            assert query == pair["satellite"]
            true = [i for i, c in enumerate(cands) if c == pair["ground"]]
        assert len(true) == 1
        letter = chr(65 + true[0])
        assert json.loads(r["solution"]) == {"answer": letter} and r["answer"] == letter
        q = where[query]
        for i, c in enumerate(cands):
            km = float(haversine(q[0], q[1], *where[c]))
            assert km == pytest.approx(r["candidate_km"][i], abs=1e-9)
            if i != true[0]:
                assert km > min_km
                assert c not in semi.get(base, set())
                # negatives come from the query's source
                assert Path(c).parts[:4] == Path(query).parts[:4] or base.split("/")[0] in c


def test_hard_negatives_are_nearest_beyond_min_km(tables: dict[str, pl.DataFrame]) -> None:
    out, _ = _mcq(tables, k=4, hard_ratio=1.0, min_km=0.3)
    vig = tables["vigor"].filter(pl.col("split") == "train")
    tiles = vig.unique("satellite", keep="first", maintain_order=True)
    g2s = out.filter((pl.col("direction") == "ground_to_satellite") & (pl.col("source") == "vigor")
                     & (pl.col("split") == "train"))
    for r in g2s.iter_rows(named=True):
        d = haversine(r["lat"], r["lon"], tiles["sat_lat"].to_numpy(), tiles["sat_lon"].to_numpy())
        order = np.argsort(d, kind="stable")
        want = [tiles["satellite"][int(i)] for i in order if d[i] > 0.3][:3]
        got = [c for c, km in zip(r["images"][1:], r["candidate_km"]) if km > 0.3]
        assert sorted(got) == sorted(want)
        assert r["n_hard"] == 3


def test_candidate_order_is_seeded(tables: dict[str, pl.DataFrame]) -> None:
    a, _ = _mcq(tables, seed=5)
    b, _ = _mcq(tables, seed=5)
    c, _ = _mcq(tables, seed=6)
    assert a["images"].to_list() == b["images"].to_list()
    assert a["answer"].to_list() != c["answer"].to_list()
    # the true answer is spread over the letters, not stuck in one slot
    assert a["answer"].n_unique() == 4


def test_prompt_in_geo_r1_form(tables: dict[str, pl.DataFrame]) -> None:
    out, _ = _mcq(tables, directions=["satellite_to_ground"])
    assert set(out["direction"]) == {"satellite_to_ground"}
    r = out.row(0, named=True)
    user = r["prompt"][-1]["content"]
    assert [p["type"] for p in user] == ["image"] * 5 + ["text"]
    assert user[-1]["text"].endswith(
        "Which one? Answer with its letter. First output the thinking process in <think> </think> "
        "tags and then output the final answer in <answer> </answer> tags."
    )
    assert r["task"] == "crossview_mcq"
    assert r["completion"][0]["content"][0]["text"].endswith(f"<answer>{r['answer']}</answer>")


def test_too_small_pool_is_counted(tables: dict[str, pl.DataFrame]) -> None:
    ctx = StepContext(name="crossview_mcq")
    small = tables["cvact"].filter(pl.col("split") == "validation")  # 6 pairs within ~3 km
    out = crossview_mcq(small, ctx, k=6, min_km=0.0).rows
    assert out.height == 12
    with pytest.raises(BuildError, match=r"no multiple-choice rows.*'too_few_candidates': 12"):
        crossview_mcq(small, ctx, k=8)


def test_bad_parameters(tables: dict[str, pl.DataFrame]) -> None:
    for kw in ({"k": 1}, {"k": 27}, {"hard_ratio": 1.5}, {"min_km": -1.0}, {"directions": []}):
        with pytest.raises(BuildError):
            _mcq(tables, **kw)


def test_pick_negatives_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    n = 300
    lat = 48 + rng.uniform(0, 0.05, n)
    lon = 11 + rng.uniform(0, 0.05, n)
    group = rng.integers(0, 3, n)
    neg, kind, _ = pick_negatives(
        lat, lon, lat, lon, np.arange(n), group, group, n_hard=2, n_rand=3, min_km=0.5,
        rng=np.random.default_rng(1), chunk=64,
    )
    d = haversine_matrix(lat, lon, lat, lon)
    assert (neg >= 0).all()
    for i in range(n):
        assert len(set(neg[i])) == 5 and i not in neg[i]
        assert (d[i, neg[i]] > 0.5).all()
        beyond = np.where(d[i] > 0.5)[0]
        nearest = beyond[np.argsort(d[i, beyond], kind="stable")][:2]
        assert sorted(neg[i][kind[i] == 1][:2]) == sorted(nearest)
        rand = neg[i][kind[i] == 0]
        assert (group[rand] == group[i]).all()


def test_build_from_samples(tables: dict[str, pl.DataFrame], samples: dict[str, Path],
                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geodata.engine import build

    for name, root in samples.items():
        monkeypatch.setenv(f"{name.upper()}_ROOT", str(root))
    res = build("crossview-pairs", out=tmp_path / "crossview-pairs", force=True)
    assert res.rows == 2 * sum(t.height for t in tables.values())
    assert set(res.configs) == {"cvusa", "cvact", "vigor", "cvcities"}
    files = sorted((tmp_path / "crossview-pairs").rglob("*.parquet"))
    df = pl.read_parquet(files[0])
    assert df["images"].list.len().unique().to_list() == [5]
