"""Hand-built dataset folders in the layout ``geodata build`` writes (for validate/publish/report tests).

``make_dataset(root, name, n)`` writes ``root/name/{README.md, manifest.json, data/train-*.parquet}``
(and a ``hotspots`` config when asked), with rows of the task ``fixture_echo`` whose reward
(registered here) is 1.0 when the completion's ``<answer>`` equals the solution's ``answer``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from geodata.registry import REWARDS, reward

TASK = "fixture_echo"

if "fixture_echo" not in REWARDS:

    @reward("fixture_echo", max_score=1.0, tasks=(TASK,))
    def fixture_echo(completions: Sequence[str], solutions: Sequence[str]) -> np.ndarray:
        """1.0 when the text in <answer> equals the solution's 'answer' field."""
        out = np.zeros(len(completions))
        for i, (c, s) in enumerate(zip(completions, solutions)):
            m = re.search(r"<answer>(.*?)</answer>", c, re.S)
            out[i] = float(m is not None and m.group(1).strip() == str(json.loads(s)["answer"]))
        return out


FEATURES = Features(
    {
        "id": Value("string"),
        "source": Value("string"),
        "task": Value("string"),
        "images": List(Image()),
        "prompt": List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}),
        "completion": List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}),
        "solution": Value("string"),
        "lat": Value("float64"),
        "lon": Value("float64"),
        "country_code": Value("string"),
        "country": Value("string"),
    }
)

COUNTRIES = [("FR", "France", 48.85, 2.35), ("US", "United States", 40.7, -74.0), ("JP", "Japan", 35.7, 139.7),
             ("BR", "Brazil", -22.9, -43.2), ("KE", "Kenya", -1.29, 36.8)]


def png_bytes(seed: int, size: int = 8) -> bytes:
    rng = np.random.default_rng(seed)
    im = PILImage.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def make_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        cc, country, lat, lon = COUNTRIES[i % len(COUNTRIES)]
        answer = f"{lat + i * 0.01:.2f},{lon:.2f}"
        rows.append(
            {
                "id": f"row-{i:05d}",
                "source": "fixture",
                "task": TASK,
                "images": [{"bytes": png_bytes(i), "path": f"{i}.png"}],
                "prompt": [{"role": "user", "content": [{"type": "image", "text": None},
                                                        {"type": "text", "text": "Where was this photo taken?"}]}],
                "completion": [{"role": "assistant", "content": [
                    {"type": "text", "text": f"<think>{'looks like ' + country}</think><answer>{answer}</answer>"}]}],
                "solution": json.dumps({"answer": answer}),
                "lat": lat + i * 0.01,
                "lon": lon,
                "country_code": cc,
                "country": country,
            }
        )
    return rows


def _write(path: Path, rows: list[dict[str, Any]], features: Features | None) -> None:
    """Write rows as a parquet shard with the HF features in its schema metadata (as the writer does)."""
    feats = features or Dataset.from_list(rows).features
    pq.write_table(pa.Table.from_pylist(rows, schema=feats.arrow_schema), path)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def write_dataset(
    root: Path,
    name: str,
    configs: dict[str, dict[str, list[list[dict[str, Any]]]]],
    features: dict[str, Features | None],
    spec_steps: list[dict[str, Any]] | None = None,
) -> Path:
    """Write ``configs[config][split] = [rows of shard 0, rows of shard 1, ...]`` in the build layout."""
    out = Path(root) / name
    out.mkdir(parents=True, exist_ok=True)
    man_configs: dict[str, Any] = {}
    files: dict[str, Any] = {}
    card_configs = []
    dataset_info = []
    for config, splits in configs.items():
        man_configs[config] = {}
        data_files = []
        split_info = []
        for split, shards in splits.items():
            rels = []
            for k, rows in enumerate(shards):
                folder = "data" if config == "default" else config
                rel = f"{folder}/{split}-{k:05d}-of-{len(shards):05d}.parquet"
                (out / folder).mkdir(exist_ok=True)
                _write(out / rel, rows, features.get(config))
                files[rel] = {"sha256": _sha(out / rel), "bytes": (out / rel).stat().st_size, "rows": len(rows)}
                rels.append(rel)
            n = sum(len(r) for r in shards)
            man_configs[config][split] = {"num_rows": n, "files": rels}
            data_files.append({"split": split, "path": rels})
            split_info.append({"name": split, "num_bytes": sum(files[r]["bytes"] for r in rels), "num_examples": n})
        entry: dict[str, Any] = {"config_name": config, "data_files": data_files}
        if config == "default":
            entry["default"] = True
        card_configs.append(entry)
        feats = features.get(config) or Dataset.from_list(shards[0]).features
        dataset_info.append({"config_name": config, "features": feats._to_yaml_list(), "splits": split_info})
    header = {
        "license": "cc-by-4.0",
        "pretty_name": name,
        "configs": card_configs,
        "dataset_info": dataset_info,
        "tags": ["geospatial"],
        "source_datasets": ["yfcc100m"],
    }
    (out / "README.md").write_text("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n# " + name + "\n\nBuilt by geodata.\n")
    manifest = {
        "name": name,
        "fingerprint": "f" * 16,
        "spec_fingerprint": "s" * 16,
        "inputs": {"mp16": "i" * 16},
        "geodata_version": "0.1.0",
        "spec": {
            "name": name,
            "sources": {"mp16": {"reader": "mp16"}},
            "steps": spec_steps or [{"step": "sample", "n": 10}],
            "card": {"license": "cc-by-4.0", "source_datasets": ["yfcc100m"], "citations": [],
                     "description": "A fixture.", "task_categories": ["image-text-to-text"], "tags": ["geospatial"]},
        },
        "configs": man_configs,
        "files": files,
        "stats": {"steps": [{"step": "sample", "rows_in": 20, "rows_out": 10, "seconds": 0.1, "drops": {"sample": 10}}],
                  "drops": {"sample": 10}, "notes": {}},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def make_dataset(root: Path, name: str = "fixture-set", n: int = 12, shards: int = 2, hotspots: bool = False) -> Path:
    """A valid dataset of ``n`` rows in ``shards`` shards (+ a ``hotspots`` config when asked)."""
    rows = make_rows(n)
    per = -(-n // shards)
    configs: dict[str, Any] = {"default": {"train": [rows[i : i + per] for i in range(0, n, per)]}}
    features: dict[str, Any] = {"default": FEATURES}
    steps = None
    if hotspots:
        configs["hotspots"] = {"train": [[{"id": "h0", "lat": 48.85, "lon": 2.35, "n": 40},
                                          {"id": "h1", "lat": 35.7, "lon": 139.7, "n": 30}]]}
        features["hotspots"] = Features({"id": Value("string"), "lat": Value("float64"), "lon": Value("float64"), "n": Value("int64")})
        steps = [{"step": "find_hotspots", "k": 2}, {"step": "exclude_near_hotspots", "radius_km": 150.0}]
    return write_dataset(root, name, configs, features, steps)


def rewrite_shard(folder: Path, rel: str, rows: list[dict[str, Any]], features: Features = FEATURES, fix_manifest: bool = True) -> None:
    """Overwrite one shard with ``rows`` (and keep the manifest consistent unless told not to)."""
    _write(folder / rel, rows, features)
    if fix_manifest:
        man = json.loads((folder / "manifest.json").read_text())
        man["files"][rel] = {"sha256": _sha(folder / rel), "bytes": (folder / rel).stat().st_size, "rows": len(rows)}
        for splits in man["configs"].values():
            for s in splits.values():
                if rel in s["files"]:
                    s["num_rows"] = sum(man["files"][f]["rows"] for f in s["files"])
        (folder / "manifest.json").write_text(json.dumps(man, indent=2))
