"""The demo datasets built in two different places (cwd, GEODATA_DATASETS, GEODATA_DATA) are
byte-identical: shards and cards. Only manifest.json (input fingerprints over paths and mtimes),
build_stats.json (timings) and the image sidecar may differ."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from geodata.engine import build

PIPES = ["mp16-rand-500k", "eo-instruct"]
_MAY_DIFFER = {"manifest.json", "build_stats.json", ".geodata-images.arrow"}


def _tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in _MAY_DIFFER
    }


def _build_in(place: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    cwd = place / "some" / "project"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("GEODATA_DATA", str(place / "data"))
    monkeypatch.setenv("GEODATA_DATASETS", str(place / "datasets"))
    out = {}
    for name in PIPES:
        res = build(name)
        assert res.status == "built" and res.rows > 0
        out[name] = _tree(res.path)
    return out


def test_two_folders_give_identical_shards_and_cards(tmp_path, monkeypatch):
    a = _build_in(tmp_path / "a", monkeypatch)
    b = _build_in(tmp_path / "elsewhere" / "b", monkeypatch)
    for name in PIPES:
        assert "README.md" in a[name] and any(k.endswith(".parquet") for k in a[name])
        assert a[name] == b[name], name
    card = (tmp_path / "a" / "datasets" / "mp16-rand-500k" / "README.md").read_text()
    assert str(tmp_path) not in card and "/tmp" not in card
    assert "from `pipelines/mp16-rand-500k.yaml`" in card
