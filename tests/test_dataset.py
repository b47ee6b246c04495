"""The typed dataset object: every command opens a built dataset through geodata.dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodata.dataset import Dataset, DatasetError


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geodata.engine import build

    out = tmp_path_factory.mktemp("ds") / "mp16-rand-500k"
    build("mp16-rand-500k", sets=["sample.n=20"], out=out)
    return out


def test_open_by_path_and_name(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = Dataset.open(built)
    assert ds.name == "mp16-rand-500k" and ds.manifest.written_by == "geodata"
    assert ds.num_rows == 20 == sum(e.num_rows for _, _, e in ds.split_entries())
    assert all(f.is_file() for f in ds.files())
    assert ds.read(columns=["id"]).height == 20
    monkeypatch.setenv("GEODATA_DATASETS", str(built.parent))
    assert Dataset.open("mp16-rand-500k").path == built


def test_unknown_config_and_split_name_the_choices(built: Path) -> None:
    ds = Dataset.open(built)
    with pytest.raises(DatasetError, match=r"config 'nope' not in \['default'\]"):
        ds.files("nope")
    with pytest.raises(DatasetError, match=r"no split 'test' \(splits: \['train'\]\)"):
        ds.files(split="test")


@pytest.mark.parametrize(
    "text,message",
    [
        ("{not json", r"manifest\.json: not valid JSON \(line 1, column 2"),
        ("[1, 2]", r"not a geodata manifest \(a JSON list, not an object\)"),
        (json.dumps({"name": "x", "fingerprint": "f", "geodata_version": "0"}), r"field 'configs': Field required"),
        (json.dumps({"name": "x", "fingerprint": "f", "geodata_version": "0",
                     "configs": {"default": {"train": {"files": []}}}}), r"field 'configs\.default\.train\.num_rows'"),
    ],
    ids=["not-json", "not-object", "no-configs", "split-without-rows"],
)
def test_bad_manifest_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(DatasetError, match=message) as e:
        Dataset.open(tmp_path)
    assert "\n" not in str(e.value)


def test_missing_dataset_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no built dataset at .*nothing-here .*run `geodata build nothing-here`"):
        Dataset.open(tmp_path / "nothing-here")


def test_sql_views_carry_the_hf_split(built: Path) -> None:
    from geodata.sql import connect

    con = connect(built.parent)
    assert con.sql("SELECT split, count(*) FROM mp16_rand_500k GROUP BY 1").fetchall() == [("train", 20)]
