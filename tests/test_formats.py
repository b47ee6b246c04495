"""Output formats: chosen by the spec's ``output.format``, one module each, no edit to the engine."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from geodata.engine import build
from geodata.errors import SpecError
from geodata.spec import load_spec

PIPE = "mp16-rand-500k"


def test_the_default_format_keeps_the_spec_fingerprint():
    spec = load_spec(PIPE)
    assert spec.output.format == "parquet" and "format" not in spec.canonical()["output"]
    other = load_spec(PIPE, ["output.format=rows-json"])
    assert other.canonical()["output"]["format"] == "rows-json" and other.fingerprint() != spec.fingerprint()


def test_an_unknown_format_fails_before_any_work(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    with pytest.raises(SpecError, match="unknown output format 'nope' \\(allowed: .*parquet"):
        build(PIPE, sets=["sample.n=10", "output.format=nope"], out=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_a_new_format_is_one_module(mp16_small, tmp_path, monkeypatch):
    """A plugin module registers a format; the build writes through it, the engine unchanged."""
    import geodata.registry as registry

    pkg = tmp_path / "myformats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "rowsjson.py").write_text(
        "import hashlib, json\n"
        "from datasets import Features\n"
        "from geodata.dataset.writer import PartitionResult, ShardFile\n"
        "from geodata.registry import output_format\n\n"
        "@output_format('rows-json')\n"
        "def write_rows_json(df, root, prefix, *, config, split, output, max_image_pixels=None, on_rows=None, runner=None):\n"
        "    '''One JSON-lines file per split, images left out.'''\n"
        "    rel = f'{prefix}/{split}.jsonl'\n"
        "    (root / prefix).mkdir(parents=True, exist_ok=True)\n"
        "    rows = df.drop('images')\n"
        "    data = rows.write_ndjson().encode()\n"
        "    (root / rel).write_bytes(data)\n"
        "    return PartitionResult(config=config, split=split, rows=df.height,\n"
        "        features=Features.from_arrow_schema(rows.to_arrow().schema),\n"
        "        files=[ShardFile(path=rel, rows=df.height, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PLUGIN_PACKAGES", registry.PLUGIN_PACKAGES + ("myformats",))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    try:
        res = build(PIPE, sets=["sample.n=20", "output.format=rows-json"], out=tmp_path / "ds")
        lines = (tmp_path / "ds" / "data" / "train.jsonl").read_text().splitlines()
        assert len(lines) == res.rows > 0 and "image" not in json.loads(lines[0])
        manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
        assert manifest["configs"]["default"]["train"]["files"] == ["data/train.jsonl"]
        assert not list((tmp_path / "ds").rglob("*.parquet"))
    finally:
        registry.FORMATS.pop("rows-json", None)
        sys.modules.pop("myformats.rowsjson", None)
        sys.modules.pop("myformats", None)
        importlib.invalidate_caches()
