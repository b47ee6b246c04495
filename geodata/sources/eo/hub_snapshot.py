"""A Hugging Face dataset repository as ``huggingface-cli download`` / ``snapshot_download`` leaves it.

The snapshot is read in place — no conversion — through the ``datasets`` library (offline):

* Parquet shards (``load_dataset("parquet", ...)``), JSON / JSONL files (``load_dataset("json", ...)``)
  and ``save_to_disk`` Arrow folders (``load_from_disk``), several configs and splits each;
* configs and splits come from the card's YAML ``configs:`` / ``data_files`` when ``README.md`` has
  them, else from the file layout: ``data/<config>/<split>-*.parquet``, ``<config>/<split>/*.parquet``,
  ``data/<split>-*.parquet``, ``<config>/<split>-NNNNN-of-NNNNN.parquet``, ``<name>-<split>.arrow``,
  ``<split>/<name>.json``, ``<name>.jsonl``, and every folder holding ``state.json`` + ``dataset_info.json`` (a
  ``save_to_disk`` dataset; its split is read off its name — ``AID_test`` → ``test`` — else the
  release's default split). Hidden folders (``.cache/``, ``.git/``) are skipped.

Columns are mapped with a declared mapping per known release (``geodata/data/hub_releases.yaml``;
evidence in ``catalogs/hub_snapshot.yaml``): EarthDial's evaluation sets, GeoChat-Bench, TEOChatlas,
RSCC; GeoChat-Instruct and MP16-Pro snapshots are handed to their own readers
(``geochat_instruct``, ``mp16``), whose rows come back unchanged. ``release: auto`` picks the first
release whose mapping fits the columns (noted); ``mapping`` sets one directly. A layout that no
mapping fits is an error listing the columns found and the mapping keys to set.

Images stay where they are: an Image / bytes column becomes an ``hfarrow://FILE::COLUMN@ROW:K#NAME``
reference into the Arrow file ``datasets`` reads (the shard itself for ``save_to_disk`` folders,
its cache file for Parquet / JSON), which the writer reads like any other reference; a path column
is resolved under ``image_dir`` (a folder or a list of folders tried in order; default: the
snapshot root; for a JSON file also its own folder, as an imagefolder's ``metadata.jsonl`` wants)
— a path written on the authors' machine (``/home/datasets/xbd_subset/...``) by
its longest tail found there.

Bad input (documented rule): a row whose image path does not exist is a counted skip
(``hub_snapshot: missing image``); a row without any image is a counted skip
(``hub_snapshot: no image``); a conversation turn pair that is not human → gpt is a counted skip
(``hub_snapshot: bad turn``). No shard at all, or no row kept, is an error naming what was looked
for.

Output (one row per example — per human/gpt turn pair for ``conversations`` releases):
``eo_family='hub'``, ``dataset`` (the release), ``config``, ``split``, ``key``
(``<config>/<split>/<row>[-<turn>]``), ``images`` (list of references, in column order),
``question``, ``answer`` (the first reference), ``answers`` (every reference), ``task``
(the release's task for the config — its first ``tasks`` pattern found in the config path — else
the config name), ``meta`` (JSON of the declared meta
columns).
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import SOURCES, source
from .._layout import official_split

__all__ = ["HUB_SCHEMA", "MAPPING_KEYS", "releases", "discover", "read_hub_snapshot"]

HUB_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "config": pl.String,
    "split": pl.String,
    "key": pl.String,
    "images": pl.List(pl.String),
    "question": pl.String,
    "answer": pl.String,
    "answers": pl.List(pl.String),
    "task": pl.String,
    "meta": pl.String,
}
#: The keys a column mapping may set.
MAPPING_KEYS = ("images", "image_template", "question", "answer", "answers", "conversations", "meta")
_SPLIT_WORDS = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}


@lru_cache(maxsize=1)
def releases() -> dict[str, dict[str, Any]]:
    """The declared releases of ``geodata/data/hub_releases.yaml``."""
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[2] / "data" / "hub_releases.yaml").read_text())["releases"]


@dataclass
class Part:
    """One (config, split) of a snapshot: its loader kind and files (or ``save_to_disk`` folder)."""

    config: str
    split: str
    kind: str  # parquet | json | arrow
    paths: list[Path] = field(default_factory=list)


def _kind(path: Path) -> str | None:
    n = path.name.lower()
    if n.endswith(".parquet"):
        return "parquet"
    if n.endswith(".arrow"):
        return "arrow"
    if n.endswith((".json", ".jsonl")) and n not in ("state.json", "dataset_info.json", "dataset_dict.json"):
        return "json"
    return None


def _split_word(name: str) -> str | None:
    for tok in reversed(re.split(r"[_\-.]", name.lower())):
        if tok in _SPLIT_WORDS:
            return _SPLIT_WORDS[tok]
    return None


def _hf_split(name: str, where: str) -> str:
    """The HF split of a release's split name: ``val`` → ``validation``; a compound name such as
    ``train_10shot`` by its split word; anything else is an error naming it."""
    try:
        return official_split(name, where=where)
    except SourceError:
        hit = _split_word(name)
        if hit is None:
            raise SourceError(f"{where}: split '{name}' is none of train / validation / test (nor names one)") from None
        return hit


def _hidden(rel: Path) -> bool:
    return any(p.startswith(".") for p in rel.parts)


def _card_configs(root: Path, default_split: str) -> list[Part]:
    """Parts declared by README.md's YAML header ``configs:`` (empty without one)."""
    import yaml

    card = root / "README.md"
    if not card.is_file():
        return []
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return []
    try:
        head = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as exc:
        raise SourceError(f"{card}: the YAML header does not parse ({str(exc).splitlines()[0]})") from None
    parts: list[Part] = []
    for c in head.get("configs") or []:
        name = str(c.get("config_name", "default"))
        files = c.get("data_files")
        entries = [{"split": default_split, "path": files}] if isinstance(files, (str, list)) and not (
            isinstance(files, list) and files and isinstance(files[0], dict)) else (files or [])
        for ent in entries:
            pats = ent.get("path")
            pats = [pats] if isinstance(pats, str) else list(pats or [])
            found = sorted({p for pat in pats for p in root.glob(pat) if p.is_file()})
            if not found:
                raise SourceError(f"{card}: config '{name}' split '{ent.get('split')}': no file matches {pats}")
            kind = _kind(found[0]) or ("arrow" if found[0].suffix == ".arrow" else None)
            if kind is None:
                raise SourceError(f"{card}: config '{name}': cannot read {found[0].name} (Parquet, JSON or Arrow expected)")
            parts.append(Part(name, str(ent.get("split", default_split)), kind, found))
    return parts


def discover(root: Path, default_split: str = "train", split_names: dict[str, str] | None = None) -> list[Part]:
    """The (config, split) parts of a snapshot folder (see the module docstring)."""
    root = Path(root)
    alias = {**_SPLIT_WORDS, **{k.lower(): v for k, v in (split_names or {}).items()}}
    parts = _card_configs(root, default_split)
    if parts:
        return parts
    groups: dict[tuple[str, str, str], list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        rel_d = d.relative_to(root)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        if "state.json" in filenames and "dataset_info.json" in filenames:
            cfg_path = rel_d.parent if (d.parent / "dataset_dict.json").is_file() else rel_d
            split = d.name.lower() if cfg_path != rel_d else None
            split = alias.get(split or "") or _split_word(d.name) or default_split
            groups.setdefault((cfg_path.as_posix() if str(cfg_path) != "." else "default", split, "arrow"), []).append(d)
            dirnames[:] = []
            continue
        for fn in sorted(filenames):
            p = d / fn
            kind = _kind(p)
            if kind is None or _hidden(p.relative_to(root)) or fn.lower() == "readme.md":
                continue
            dirs = [x for x in rel_d.parts]
            split = None
            if dirs and dirs[-1].lower() in alias:
                split = alias[dirs[-1].lower()]
                dirs = dirs[:-1]
            if split is None and kind in ("parquet", "arrow"):  # train-00000-of-00002.parquet, imagefolder-test.arrow
                split = _split_word(p.name.rsplit(".", 1)[0]) or next(
                    (alias[t] for t in reversed(re.split(r"[_\-.]", p.name.lower())) if t in alias), None)
            if dirs and dirs[0] == "data":
                dirs = dirs[1:]
            if kind == "json":
                dirs = dirs + [p.name.split(".")[0]]
            config = "/".join(dirs) or "default"
            groups.setdefault((config, split or default_split, kind), []).append(p)
    return [Part(c, s, k, sorted(v)) for (c, s, k), v in sorted(groups.items())]


@contextmanager
def _quiet():
    """``datasets``' progress bars off for the block (a reader prints nothing), then as they were."""
    from datasets.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _load(part: Part, cache_dir: str | None):
    """The part as a memory-mapped ``datasets.Dataset``."""
    import datasets

    if part.kind == "arrow" and part.paths and part.paths[0].is_dir():  # save_to_disk folders
        dss = [datasets.load_from_disk(str(p)) for p in part.paths]
        return dss[0] if len(dss) == 1 else datasets.concatenate_datasets(dss)
    builder = {"parquet": "parquet", "json": "json", "arrow": "arrow"}[part.kind]
    return datasets.load_dataset(builder, data_files=[str(p) for p in part.paths], split="train", cache_dir=cache_dir)


def _columns(v: dict[str, Any]) -> list[str]:
    cols = list(v.get("images") or [])
    for k in ("question", "answer", "conversations"):
        if v.get(k):
            cols.append(v[k])
    cols += list(v.get("answers") or [])
    cols += re.findall(r"\{(\w+)\}", v.get("image_template", ""))
    return cols


def _fits(v: dict[str, Any], columns: list[str]) -> bool:
    return bool(v.get("images") or v.get("image_template")) and all(c in columns for c in _columns(v))


def _pick(release: str, mapping: dict[str, Any] | None, columns: list[str], where: str) -> tuple[str, dict[str, Any]]:
    if mapping:
        bad = [k for k in mapping if k not in MAPPING_KEYS]
        if bad:
            raise SourceError(f"hub_snapshot: mapping keys {bad} unknown (known: {', '.join(MAPPING_KEYS)})")
        if not _fits(mapping, columns):
            miss = [c for c in _columns(mapping) if c not in columns]
            raise SourceError(f"{where}: the mapping names columns {miss} not in {columns}")
        return (release if release != "auto" else "custom"), mapping
    names = list(releases()) if release == "auto" else [release]
    for name in names:
        for v in releases()[name].get("variants") or []:
            if _fits(v, columns):
                return name, v
    raise SourceError(
        f"{where}: unknown column layout {columns} for release '{release}'; set the reader's mapping "
        f"(keys: images or image_template, question, answer or answers or conversations, meta)")


def _arrow_files(ds) -> list[tuple[str, int]]:
    """``(arrow file, rows)`` behind a memory-mapped ``datasets.Dataset``, in row order."""
    from ...images import _arrow_table

    files = [c["filename"] for c in ds.cache_files]
    if not files or getattr(ds, "_indices", None) is not None:
        raise SourceError("hub_snapshot: the dataset is not backed by Arrow files in row order")
    return [(f, _arrow_table(f).num_rows) for f in files]


def _image_refs(ds, col: str, base: list[Path]) -> list[list[str | None]]:
    """Per row, the image references of column ``col`` (None for a missing file)."""
    import pyarrow as pa

    chunked = ds.data.column(col)
    typ = chunked.type
    inner = typ.value_type if pa.types.is_list(typ) or pa.types.is_large_list(typ) else typ
    if pa.types.is_string(inner) or pa.types.is_large_string(inner):
        out = []
        strip = [0]  # leading components to drop: paths written on the authors' machine
        for cell in chunked.to_pylist():
            paths = cell if isinstance(cell, list) else [cell]
            out.append([_resolve(p, base, strip) for p in paths if p])
        return out
    if not (pa.types.is_struct(inner) or pa.types.is_binary(inner) or pa.types.is_large_binary(inner)):
        raise SourceError(f"hub_snapshot: column '{col}' holds {typ}, not images (Image, bytes or paths)")
    import pyarrow.compute as pc

    arr = chunked.combine_chunks()
    if inner is not typ:  # a list of images: k items a row (a null list: none)
        lens = arr.value_lengths().fill_null(0).to_pylist()
        ok = [True] * len(arr)
    else:
        lens = [1] * len(arr)
        valid = arr.is_valid()
        if pa.types.is_struct(typ):
            has = pc.or_(pc.is_valid(pc.struct_field(arr, "bytes")), pc.is_valid(pc.struct_field(arr, "path")))
            valid = pc.and_(valid, has.fill_null(False))
        ok = valid.to_pylist()
    out, row = [], 0
    for f, n in _arrow_files(ds):
        for r in range(n):
            out.append([f"hfarrow://{f}::{col}@{r}:{j}#{quote(f'{col}-{row}-{j}', safe='')}" if ok[row] else None
                        for j in range(lens[row])])
            row += 1
    return out


def _resolve(p: str, bases: list[Path], strip: list[int]) -> str | None:
    """The file of path ``p``: as given (absolute), under one of ``bases``, else — for a path
    written on another machine (``/home/datasets/xbd_subset/...``) — its longest tail that exists
    under a base (the number of dropped components is kept in ``strip`` for the next rows)."""
    q = Path(p)
    if q.is_absolute() and q.is_file():
        return str(q)
    parts = [x for x in q.parts if x not in ("/", "\\")]
    for k in [strip[0]] + [k for k in range(len(parts)) if k != strip[0]]:
        if k >= len(parts):
            continue
        for base in bases:
            cand = base.joinpath(*parts[k:])
            if cand.is_file():
                strip[0] = k
                return str(cand)
    return None


def _task(rel: dict[str, Any], config: str) -> str:
    """The release's task for ``config``: its first ``tasks`` pattern found in the config path."""
    tasks = rel.get("tasks") or {}
    for pattern, task in tasks.items():
        if pattern != "default" and re.search(pattern, config):
            return str(task)
    return str(tasks.get("default", config))


def _strip_tokens(text: str) -> str:
    return re.sub(r"\s*<(image|video)>\s*", " ", str(text or "")).strip()


def _rows(out: StepOutput, ds, part: Part, name: str, rel: dict[str, Any], v: dict[str, Any], base: list[Path]) -> list[dict]:
    n = len(ds)
    if v.get("images"):
        per_col = [_image_refs(ds, c, base) for c in v["images"]]
        images = [[r for col in per_col for r in col[i]] for i in range(n)]
    else:
        tmpl, vals = v["image_template"], ds.select_columns(re.findall(r"\{(\w+)\}", v["image_template"])).to_list()
        images, strip = [], [0]
        for row in vals:
            images.append([_resolve(tmpl.format(**row), base, strip)])
    col = lambda c: ds.data.column(c).to_pylist() if c else [None] * n  # noqa: E731
    questions = col(v.get("question"))
    answers = [[str(a) for a in row if a not in (None, "")] for row in zip(*[col(c) for c in (v.get("answers") or [v.get("answer")])])] \
        if (v.get("answers") or v.get("answer")) else [[] for _ in range(n)]
    meta_cols = [c for c in (v.get("meta") or []) if c in ds.column_names]
    metas = ds.select_columns(meta_cols).to_list() if meta_cols else [{} for _ in range(n)]
    convs = col(v.get("conversations")) if v.get("conversations") else None
    task = _task(rel, part.config)
    rows = []
    for i in range(n):
        imgs = images[i]
        if any(r is None for r in imgs):
            out.drop("hub_snapshot: missing image", 1)
            continue
        if not imgs:
            out.drop("hub_snapshot: no image", 1)
            continue
        base_row = {"eo_family": "hub", "dataset": name, "config": part.config, "split": part.split, "images": imgs,
                    "task": str(metas[i].get("task") or task) if convs is not None else task,
                    "meta": json.dumps(metas[i], default=str, sort_keys=True)}
        if convs is None:
            rows.append({**base_row, "key": f"{part.config}/{part.split}/{i}", "question": _strip_tokens(questions[i]),
                         "answer": answers[i][0] if answers[i] else None, "answers": answers[i]})
            continue
        turns = convs[i] or []
        for t in range(0, len(turns) - 1, 2):
            h, g = turns[t] or {}, turns[t + 1] or {}
            if h.get("from") != "human" or g.get("from") != "gpt":
                out.drop("hub_snapshot: bad turn", 1)
                continue
            a = str(g.get("value") or "").strip()
            rows.append({**base_row, "key": f"{part.config}/{part.split}/{i}-{t // 2}",
                         "question": _strip_tokens(h.get("value")), "answer": a, "answers": [a] if a else []})
    return rows


@source("hub_snapshot", env="HUB_SNAPSHOT_ROOT", sample=lambda d: write_hub_snapshot_sample(d))
def read_hub_snapshot(
    ctx: StepContext,
    *,
    root: Path,
    release: str = "auto",
    configs: list[str] | None = None,
    splits: list[str] | None = None,
    mapping: dict[str, Any] | None = None,
    image_dir: str | list[str] | None = None,
    cache_dir: str | None = None,
) -> StepOutput:
    """A downloaded Hub dataset repository (Parquet / JSON / Arrow shards), read through ``datasets``."""
    out = StepOutput()
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: folder not found")
    known = releases()
    if release != "auto" and release not in known and not mapping:
        raise SourceError(f"hub_snapshot: unknown release '{release}' (known: {', '.join(known)}, or set mapping)")
    for name in ([release] if release != "auto" else list(known)):
        rel = known.get(name) or {}
        if rel.get("delegate") and (release != "auto" or (root / rel["probe"]).exists()):
            out.note("hub_snapshot.image_layout", f"{name} snapshot, read by the '{rel['delegate']}' source")
            res = SOURCES[rel["delegate"]].fn(ctx, root=root)
            res = res if isinstance(res, StepOutput) else StepOutput(res)
            for k, n in res.drops.items():
                out.drop(k, n)
            for k, n in res.notes.items():
                out.note(k, n)
            return out.result(res.rows)
    rel0 = known.get(release, {})
    parts = discover(root, rel0.get("default_split", "test" if release == "auto" else "train"), rel0.get("splits"))
    if not parts:
        raise SourceError(f"{root}: no Parquet, JSON or save_to_disk Arrow shard found (README configs, data/<config>/<split>-*.parquet, "
                          "<config>/<split>/*.parquet, <split>/*.json, folders with state.json + dataset_info.json)")
    want_splits = None if splits is None else {official_split(s, where="hub_snapshot splits") for s in splits}
    dirs = [image_dir] if isinstance(image_dir, str) or image_dir is None else list(image_dir)
    base = [Path(d) if d and os.path.isabs(d) else root / (d or "") for d in dirs]
    rows: list[dict] = []
    seen: dict[str, str] = {}
    for part in parts:
        try:
            part.split = _hf_split(part.split, f"{root}: config '{part.config}'")
        except SourceError:
            if want_splits is None:
                raise
            continue  # a split of its own name was not asked for
        if (configs and part.config not in configs) or (want_splits and part.split not in want_splits):
            continue
        with _quiet():
            ds = _load(part, cache_dir)
        name, v = _pick(release, mapping, list(ds.column_names), f"{root}: config '{part.config}' split '{part.split}'")
        seen[f"{part.config}/{part.split}"] = name
        # a JSON file's own folder too: an imagefolder's metadata.jsonl names its images relative to itself
        bases = base + ([part.paths[0].parent] if part.kind == "json" else [])
        rows += _rows(out, ds, part, name, known.get(name, {}), v, bases)
    if not seen:
        raise SourceError(f"{root}: no part matches configs {configs} / splits {splits} "
                          f"(found: {', '.join(sorted({p.config + '/' + p.split for p in parts}))})")
    if not rows:
        raise SourceError(f"{root}: no row kept of {', '.join(seen)} (dropped: {dict(out.drops) or 'none'}; "
                          "images are looked for under image_dir, default the snapshot root)")
    out.note("hub_snapshot.image_layout", "; ".join(f"{k} ({v})" for k, v in seen.items()))
    return out.result(pl.DataFrame(rows, schema=HUB_SCHEMA))


def write_hub_snapshot_sample(d: Path) -> None:
    """An EarthDial-like snapshot: two ``save_to_disk`` evaluation sets (classification, captioning)
    with embedded JPEG images, plus one row whose image is missing (a counted skip)."""
    import io

    import numpy as np
    from PIL import Image

    def jpeg(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB").save(buf, format="JPEG")
        return buf.getvalue()

    d = Path(d)
    with _quiet():
        _write_sample(d, jpeg)


def _write_sample(d: Path, jpeg) -> None:
    import datasets

    feats = datasets.Features({"jpg": datasets.Image(), "question": datasets.Value("string"), "groundtruth": datasets.Value("string")})
    datasets.Dataset.from_dict({
        "jpg": [{"bytes": jpeg(1), "path": None}, {"bytes": jpeg(2), "path": None}, None],
        "question": ["[cls] <image> Classify the image. Classes: airport, beach.", "<image> Classify the image.", "<image> ?"],
        "groundtruth": ["airport", "beach", "beach"]}, features=feats).save_to_disk(str(d / "Classification" / "UCM"))
    cap = datasets.Features({"jpg": datasets.Image(), "question": datasets.Value("string"),
                             **{f"groundtruth{k}": datasets.Value("string") for k in range(5)}})
    datasets.Dataset.from_dict({"jpg": [{"bytes": jpeg(3), "path": None}], "question": ["[caption] <image> Describe the image."],
                                **{f"groundtruth{k}": [f"Caption {k} of a port."] for k in range(5)}},
                               features=cap).save_to_disk(str(d / "Image_captioning" / "RSITMD_Captions" / "RSITMD_Captions_test"))
