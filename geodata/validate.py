"""Check a built dataset before anyone spends GPU time on it.

``validate_dataset(name)`` reads a built folder (``datasets/<name>/``: ``README.md``,
``manifest.json``, Parquet shards) and checks, in this order:

=================  ==========================================================================
check              what fails it
=================  ==========================================================================
``layout``         a missing card or manifest, a shard listed in the manifest that is missing,
                   whose size, sha256 or row count differs from the manifest
``card``           a card whose YAML header does not parse, or whose ``configs`` disagree with
                   the manifest (config names, splits, data files)
``schema``         a row config that lacks a core column or has it with the wrong Arrow type;
                   ``images`` not stored as a list of HF ``Image``; card features that differ
                   from the shard's
``id``             a null id, or an id that occurs twice in the dataset
``prompt``         an empty prompt, or as many image placeholders as images
``completion``     not exactly one assistant message with text
``solution``       a ``solution`` that is not valid JSON
``image``          image bytes that are missing or do not decode (header and pixels)
``coords``         ``lat``/``lon`` columns outside [-90, 90] x [-180, 180] or NaN
``reward``         a task without a registered reward, a reward that raises, or a gold
                   completion that scores below the reward's ``max_score``
=================  ==========================================================================

The reward self-check is the one that catches scale bugs early: a box written in pixels while
the reward expects [0, 1000] coordinates (the VLM-R1 IoU-stuck-at-0 failure) makes the gold
completion score below the maximum, and the row is listed here instead of after a day of RL.

A config whose shards carry none of ``images``, ``prompt``, ``completion``, ``solution`` is
an auxiliary table (Hard-200K's ``hotspots``): only its layout and row counts are checked.

Examples
--------
>>> from geodata.validate import validate_dataset          # doctest: +SKIP
>>> report = validate_dataset("mp16-rand-500k")             # doctest: +SKIP
>>> report.ok, report.rows                                  # doctest: +SKIP
(True, 500000)
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .dataset.card import split_card  # noqa: F401 - part of this module's API (tests, publish)
from .dataset import Dataset, DatasetError
from ._cache import file_sha256 as _sha256
from .errors import GeodataError
from .schema import CORE_COLUMNS, messages_text

__all__ = [
    "ValidationError",
    "Issue",
    "ValidationReport",
    "validate_dataset",
    "row_configs",
    "CHECKS",
]

CHECKS: tuple[str, ...] = (
    "layout", "card", "schema", "id", "prompt", "completion", "solution", "image", "coords", "reward",
)

#: columns whose presence makes a config a row config (checked against the full schema)
ROW_MARKERS = ("images", "prompt", "completion", "solution")

_PART = pa.struct([("type", pa.string()), ("text", pa.string())])
_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.list_(_PART))]))
_IMAGES = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
#: the Arrow type each core column must have (large_* variants are accepted as equal)
CORE_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "source": pa.string(),
    "task": pa.string(),
    "images": _IMAGES,
    "prompt": _MESSAGES,
    "completion": _MESSAGES,
    "solution": pa.string(),
}


class ValidationError(GeodataError):
    """A dataset failed validation (raised by ``publish``; ``validate`` returns a report)."""


@dataclass(frozen=True)
class Issue:
    """One failed check.

    ``file`` is relative to the dataset folder; ``row`` is the 0-based row within ``file``
    (None for a file- or dataset-level issue).
    """

    check: str
    message: str
    file: str | None = None
    row: int | None = None
    id: str | None = None
    config: str | None = None
    split: str | None = None

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file if self.row is None else f"{self.file} row {self.row}")
        if self.id is not None:
            parts.append(f"id {self.id!r}")
        return ", ".join(parts) or "dataset"

    def line(self) -> str:
        return f"{self.check}: {self.where()}: {self.message}"


@dataclass
class ValidationReport:
    """What ``validate_dataset`` found.

    ``counts`` holds the number of failures per check (every failure is counted, only the
    first ``max_issues`` are kept in ``issues``); ``rewards`` holds, per task, the reward name,
    its ``max_score``, the number of rows scored, how many reached the maximum and the minimum
    score seen.
    """

    name: str
    path: Path
    rows: int = 0
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    rewards: dict[str, dict[str, Any]] = field(default_factory=dict)
    images_checked: int = 0
    max_issues: int = 1000
    #: facts that do not fail the dataset but a user must see (an empty config, predictions
    #: that solved nothing: the build's ``*.warning`` notes)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return sum(self.counts.values()) == 0

    def add(self, issue: Issue) -> None:
        self.counts[issue.check] += 1
        if len(self.issues) < self.max_issues:
            self.issues.append(issue)

    def summary(self) -> str:
        """One paragraph: verdict, rows, failures per check, reward self-check per task."""
        cfg = ", ".join(
            f"{c}/{s}={n}" for c, splits in self.configs.items() for s, n in splits.items()
        )
        warned = f", {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}" if self.warnings else ""
        lines = [
            f"{self.name}: {'ok' if self.ok else 'FAILED'} ({self.rows} rows; {cfg}; "
            f"{self.images_checked} images decoded{warned})"
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        for task, r in sorted(self.rewards.items()):
            if r["reward"] is None:
                lines.append(f"  reward self-check {task}: no reward registered for this task ({r['rows']} rows unchecked)")
                continue
            low = f", lowest {r['min']:.4g}" if r["at_max"] < r["rows"] and np.isfinite(r["min"]) else ""
            lines.append(
                f"  reward self-check {task}: {r['at_max']}/{r['rows']} gold completions score the maximum "
                f"{r['max_score']:g} of reward '{r['reward']}'{low}"
            )
        for check in CHECKS:
            if self.counts.get(check):
                lines.append(f"  {check}: {self.counts[check]} failures")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "rows": self.rows,
            "configs": self.configs,
            "images_checked": self.images_checked,
            "counts": dict(self.counts),
            "rewards": {
                t: {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                for t, r in self.rewards.items()
            },
            "issues": [i.__dict__ for i in self.issues],
        }


def row_configs(ds: Dataset) -> dict[str, bool]:
    """For each config of the dataset: True when it holds schema rows, False when auxiliary."""
    out: dict[str, bool] = {}
    for config, splits in ds.manifest.configs.items():
        names = None
        for f in (ds.path / f for s in splits.values() for f in s.files):
            if not f.is_file():
                continue
            try:
                names = pq.read_schema(f).names
                break
            except Exception:  # noqa: BLE001 - an unreadable shard is reported by the layout check
                continue
        out[config] = config == "default" if names is None else any(c in names for c in ROW_MARKERS)
    return out


# -- checks ---------------------------------------------------------------------------------


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Arrow type equality that treats string/large_string, binary/large_binary, list/large_list alike."""
    norm = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary(), pa.string_view(): pa.string()}
    a, b = norm.get(a, a), norm.get(b, b)
    if pa.types.is_list(a) or pa.types.is_large_list(a) or pa.types.is_list_view(a):
        if not (pa.types.is_list(b) or pa.types.is_large_list(b) or pa.types.is_list_view(b)):
            return False
        return _same_type(a.value_type, b.value_type)
    if pa.types.is_struct(a):
        if not pa.types.is_struct(b) or a.num_fields != b.num_fields:
            return False
        return all(
            a.field(i).name == b.field(i).name and _same_type(a.field(i).type, b.field(i).type)
            for i in range(a.num_fields)
        )
    return a == b


def _num_rows(f: Path) -> int | None:
    """Rows of a parquet file from its footer; None when the file is not readable parquet."""
    try:
        return pq.ParquetFile(f).metadata.num_rows
    except Exception:  # noqa: BLE001 - truncated or not parquet: the shard check names it
        return None


def _check_layout(ds: Dataset, report: ValidationReport, hashes: bool) -> None:
    path, manifest = ds.path, ds.manifest
    if not ds.card_path.is_file():
        report.add(Issue("layout", "the dataset card README.md is missing", file="README.md"))
    listed = {f for _, _, e in ds.split_entries() for f in e.files}
    for rel in sorted(listed - set(manifest.files)):
        report.add(Issue("layout", "listed under configs but not under files in manifest.json", file=rel))
    for rel, meta in sorted(manifest.files.items()):
        f = path / rel
        if not f.is_file():
            report.add(Issue("layout", "listed in manifest.json but missing", file=rel))
            continue
        size = f.stat().st_size
        if size != meta.bytes:
            report.add(Issue("layout", f"size {size} differs from the manifest's {meta.bytes}", file=rel))
            continue
        if rel.endswith(".parquet"):
            n = _num_rows(f)
            if n is None:
                continue  # reported once, by the shard check
            if n != meta.rows:
                report.add(Issue("layout", f"{n} rows, the manifest says {meta.rows}", file=rel))
        if hashes and meta.sha256 and _sha256(f) != meta.sha256:
            report.add(Issue("layout", "sha256 differs from the manifest (file changed after the build)", file=rel))
    for config, split, s in ds.split_entries():
        counts = [_num_rows(path / f) for f in s.files if (path / f).is_file()]
        rows = sum(c for c in counts if c is not None)
        if rows != s.num_rows and None not in counts and all((path / f).is_file() for f in s.files):
            report.add(
                Issue("layout", f"{rows} rows in the shards, the manifest says {s.num_rows}",
                      config=config, split=split, file=f"{config}/{split}")
            )


def _check_card(ds: Dataset, report: ValidationReport) -> dict[str, Any]:
    if not ds.card_path.is_file():
        return {}
    try:
        header = ds.card.header
    except DatasetError as exc:
        report.add(Issue("card", str(exc).split(": ", 1)[-1], file="README.md"))
        return {}
    man = {c: {s: sorted(v.files) for s, v in splits.items()} for c, splits in ds.manifest.configs.items()}
    card: dict[str, dict[str, list[str]]] = {}
    for entry in header.get("configs") or []:
        name = entry.get("config_name", "default")
        data_files = entry.get("data_files") or []
        if isinstance(data_files, str):
            data_files = [{"split": "train", "path": data_files}]
        card[name] = {}
        for df in data_files:
            paths = df.get("path")
            card[name][df.get("split", "train")] = sorted([paths] if isinstance(paths, str) else list(paths or []))
    if not card:
        report.add(Issue("card", "the yaml header has no 'configs' (datasets would guess the layout)", file="README.md"))
        return header
    for c in sorted(set(man) | set(card)):
        if c not in card:
            report.add(Issue("card", f"config '{c}' of the manifest is missing from the card's configs", file="README.md"))
            continue
        if c not in man:
            report.add(Issue("card", f"config '{c}' of the card is not in the manifest", file="README.md"))
            continue
        for s in sorted(set(man[c]) | set(card[c])):
            cf, mf = card[c].get(s), man[c].get(s)
            if cf is None or mf is None:
                report.add(Issue("card", f"config '{c}': split '{s}' is in only one of card and manifest", file="README.md"))
                continue
            # a card may use a glob (data/train-*) instead of the file list
            from fnmatch import fnmatch

            if not all(any(fnmatch(m, pat) for pat in cf) for m in mf) or not all(
                any(fnmatch(m, pat) for m in mf) for pat in cf
            ):
                report.add(
                    Issue("card", f"config '{c}' split '{s}': card data_files {cf} differ from the manifest's {mf}",
                          file="README.md")
                )
    return header


def _card_features(header: dict[str, Any], config: str) -> Any:
    info = header.get("dataset_info")
    if isinstance(info, dict):
        info = [info]
    for entry in info or []:
        if entry.get("config_name", "default") == config and entry.get("features") is not None:
            from datasets import Features

            return Features._from_yaml_list(entry["features"])
    return None


def _check_schema(
    path: Path, rel: str, schema: pa.Schema, header: dict[str, Any], config: str, split: str, report: ValidationReport
) -> bool:
    """Check one shard's schema; False when row checks can't run on it."""
    ok = True
    for col in CORE_COLUMNS:
        if col not in schema.names:
            report.add(Issue("schema", f"core column '{col}' is missing", file=rel, config=config, split=split))
            ok = False
        elif not _same_type(schema.field(col).type, CORE_TYPES[col]):
            report.add(
                Issue("schema", f"column '{col}' has type {schema.field(col).type}, expected {CORE_TYPES[col]}",
                      file=rel, config=config, split=split)
            )
            ok = False
    if not ok:
        return False
    from datasets import Features, Image, List, Sequence

    try:
        feats = Features.from_arrow_schema(schema)
    except Exception as exc:  # noqa: BLE001 - the message names the problem
        report.add(Issue("schema", f"hf features in the parquet metadata do not parse: {exc}", file=rel))
        return True
    img = feats.get("images")
    inner = getattr(img, "feature", None)
    if not isinstance(img, (List, Sequence)) or not isinstance(inner, Image):
        report.add(
            Issue("schema", f"feature 'images' is {img!r}, expected List(Image()) (images would load as raw structs)",
                  file=rel, config=config, split=split)
        )
    card_feats = _card_features(header, config)
    if card_feats is not None and dict(card_feats) != dict(feats):
        diff = sorted(k for k in set(card_feats) | set(feats) if card_feats.get(k) != feats.get(k))
        report.add(
            Issue("schema", f"card features differ from the shard's in {diff}", file=rel, config=config, split=split)
        )
    return True


def _decode_image(data: bytes | None) -> str | None:
    """None when ``data`` decodes, else why not.

    Checked like the writer checks (:func:`geodata.images.image_problem`): decoded in full up to
    :data:`geodata.images.FULL_DECODE_PIXELS` (larger JPEGs at 1/8 scale, every byte read; every
    PNG's pixel stream checked to its last row), a very large image is never decoded at full size, and Pillow's
    decompression-bomb guard does not call a big tile broken.
    """
    if not data:
        return "no image bytes"
    from .images import image_problem

    if image_problem(data) is None:
        return None
    import warnings

    from PIL import Image

    try:  # the failure's own words, for the report
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the finding
        return f"does not decode ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return "does not decode"


def _n_image_parts() -> pl.Expr:
    return (
        pl.col("prompt")
        .list.eval(
            pl.element().struct.field("content").list.eval((pl.element().struct.field("type") == "image").cast(pl.Int32)).list.sum()
        )
        .list.sum()
    )


def _iter_batches(f: Path, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    pf = pq.ParquetFile(f)
    yield from pf.iter_batches(batch_size=batch_rows, columns=columns)


def _score(task: str, completions: list[str], solutions: list[str]) -> tuple[Any, np.ndarray | None, dict[int, str], str | None]:
    """(reward info, scores, per-row errors, task-level error) for rows of one task.

    The batch is scored in one call; when that call raises, rows are scored one by one so
    that the rows that make the reward raise are the ones listed (their score is NaN).
    """
    from .registry import reward_for_task

    try:
        info = reward_for_task(task)
    except GeodataError as exc:
        return None, None, {}, str(exc)

    def call(c: list[str], s: list[str]) -> np.ndarray:
        out = np.asarray(info.fn(c, s), dtype=np.float64)
        if out.shape != (len(c),):
            raise ValueError(f"returned shape {out.shape} for {len(c)} completions")
        return out

    try:
        return info, call(completions, solutions), {}, None
    except Exception:  # noqa: BLE001 - find the rows that make it raise
        pass
    scores = np.full(len(completions), np.nan)
    errors: dict[int, str] = {}
    for j, (c, s) in enumerate(zip(completions, solutions)):
        try:
            scores[j] = call([c], [s])[0]
        except Exception as exc:  # noqa: BLE001 - a raising reward is the finding
            errors[j] = f"reward '{info.name}' raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return info, scores, errors, None


def _check_rows(
    path: Path,
    rel: str,
    config: str,
    split: str,
    report: ValidationReport,
    seen_ids: dict[str, str],
    images: bool,
    rewards: bool,
    batch_rows: int,
) -> None:
    f = path / rel
    names = pq.read_schema(f).names
    meta_cols = [c for c in ("lat", "lon") if c in names]
    cols = ["id", "task", "prompt", "completion", "solution", "images", *meta_cols]
    offset = 0
    tol = 1e-6
    for batch in _iter_batches(f, cols, batch_rows):
        n = batch.num_rows
        tbl = pa.Table.from_batches([batch])
        df = pl.from_arrow(tbl.drop(["images"]))
        assert isinstance(df, pl.DataFrame)
        ids = df["id"].to_list()

        def add(check: str, i: int, msg: str) -> None:
            report.add(Issue(check, msg, file=rel, row=offset + i, id=ids[i], config=config, split=split))

        # ids: null, and duplicates across the whole dataset (first occurrence wins)
        for i, rid in enumerate(ids):
            if rid is None or rid == "":
                add("id", i, "id is null or empty")
            elif rid in seen_ids:
                add("id", i, f"duplicate id (first seen in {seen_ids[rid]})")
            else:
                seen_ids[rid] = f"{rel} row {offset + i}"

        # prompt and images agree
        n_img_col = pc.list_value_length(tbl.column("images")).fill_null(0).to_numpy(zero_copy_only=False)
        checks = df.select(
            n_msgs=pl.col("prompt").list.len().fill_null(0),
            n_parts=_n_image_parts().fill_null(0),
            c_len=pl.col("completion").list.len().fill_null(0),
            c_role=pl.col("completion").list.first().struct.field("role"),
        )
        n_msgs = checks["n_msgs"].to_numpy()
        n_parts = checks["n_parts"].to_numpy()
        for i in np.flatnonzero(n_msgs == 0):
            add("prompt", int(i), "prompt has no messages")
        for i in np.flatnonzero((n_msgs > 0) & (n_parts != n_img_col)):
            add("prompt", int(i), f"prompt has {int(n_parts[i])} image placeholders but the row has {int(n_img_col[i])} images")

        # completion: one assistant message with text
        c_len = checks["c_len"].to_numpy()
        c_role = checks["c_role"].to_list()
        completions = [messages_text(m) if m is not None else "" for m in df["completion"].to_list()]
        for i in range(n):
            if c_len[i] != 1 or c_role[i] != "assistant":
                add("completion", i, f"completion must be one assistant message, got {int(c_len[i])} (role {c_role[i]!r})")
            elif not completions[i].strip():
                add("completion", i, "the assistant message has no text")

        # solution is JSON
        solutions = df["solution"].to_list()
        bad_solution: set[int] = set()
        for i, s in enumerate(solutions):
            try:
                json.loads(s)
            except (TypeError, json.JSONDecodeError) as exc:
                bad_solution.add(i)
                add("solution", i, f"solution is not valid json ({str(exc).splitlines()[0].lower()}): {str(s)[:60]!r}")

        # coordinates
        if len(meta_cols) == 2:
            lat = df["lat"].cast(pl.Float64).to_numpy()
            lon = df["lon"].cast(pl.Float64).to_numpy()
            bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180))
            for i in np.flatnonzero(bad):
                add("coords", int(i), f"lat/lon ({lat[i]}, {lon[i]}) outside [-90, 90] x [-180, 180]")

        # images decode
        if images:
            img_col = tbl.column("images").to_pylist()
            for i, imgs in enumerate(img_col):
                for k, im in enumerate(imgs or []):
                    why = _decode_image((im or {}).get("bytes"))
                    report.images_checked += 1
                    if why:
                        add("image", i, f"image {k} ({(im or {}).get('path')}) {why}")

        # reward self-check, one call per task in the batch
        if rewards:
            tasks = df["task"].to_list()
            by_task: dict[str, list[int]] = {}
            for i, t in enumerate(tasks):
                if i not in bad_solution:  # already listed; a reward can't score it
                    by_task.setdefault(t, []).append(i)
            for task, idx in by_task.items():
                info, scores, errors, err = _score(task, [completions[i] for i in idx], [solutions[i] for i in idx])
                stats = report.rewards.setdefault(
                    str(task),
                    {"reward": info.name if info else None, "max_score": info.max_score if info else float("nan"),
                     "rows": 0, "at_max": 0, "min": float("inf")},
                )
                stats["rows"] += len(idx)
                if err is not None:  # listed once per task, every row counted
                    if stats["rows"] == len(idx):
                        add("reward", idx[0], err + " (every row of this task fails the self-check)")
                        report.counts["reward"] += len(idx) - 1
                    else:
                        report.counts["reward"] += len(idx)
                    continue
                assert info is not None and scores is not None
                at_max = scores >= info.max_score - tol
                stats["at_max"] += int(at_max.sum())
                if np.isfinite(scores).any():
                    stats["min"] = float(min(stats["min"], float(np.nanmin(scores))))
                for j in np.flatnonzero(~at_max):
                    i = idx[j]
                    if j in errors:
                        add("reward", i, errors[j])
                        continue
                    add(
                        "reward",
                        i,
                        f"gold completion scores {scores[j]:.4g} < {info.max_score:g} under reward '{info.name}' "
                        f"(task '{task}'; answer {completions[i][-80:]!r}, solution {solutions[i][:80]!r})",
                    )
        offset += n


def validate_dataset(
    name_or_path: str | Path,
    datasets_dir: str | Path | None = None,
    *,
    images: bool = True,
    rewards: bool = True,
    hashes: bool = True,
    max_issues: int = 1000,
    batch_rows: int = 512,
) -> ValidationReport:
    """Validate a built dataset; never raises on a bad row, returns a report listing them.

    Parameters
    ----------
    name_or_path
        A dataset name under ``datasets_dir`` or the path of a built folder.
    images
        Decode every image in full (the slow part; see :data:`geodata.images.FULL_DECODE_PIXELS`).
    rewards
        Run the reward self-check: every gold completion must score its task's ``max_score``.
    hashes
        Compare each shard's sha256 with the manifest.
    max_issues
        Issues kept in the report (all are counted).

    Examples
    --------
    >>> from geodata.validate import validate_dataset                # doctest: +SKIP
    >>> r = validate_dataset("mp16-rand-500k", images=False)          # doctest: +SKIP
    >>> print(r.summary().splitlines()[0])                            # doctest: +SKIP
    mp16-rand-500k: ok (50 rows; default/train=50; 0 images decoded)
    """
    ds = Dataset.open(name_or_path, datasets_dir)
    path = ds.path
    report = ValidationReport(name=ds.name, path=path, max_issues=max_issues)
    _check_layout(ds, report, hashes)
    header = _check_card(ds, report)
    kinds = row_configs(ds)
    seen_ids: dict[str, str] = {}
    for config, split, s in ds.split_entries():
        report.configs.setdefault(config, {})
        rows = 0
        for rel in s.files:
            f = path / rel
            if not f.is_file():
                continue
            try:
                pf = pq.ParquetFile(f)
            except Exception as exc:  # noqa: BLE001
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                report.add(Issue("layout", f"not a readable parquet file, truncated or corrupt ({msg})",
                                 file=rel, config=config, split=split))
                continue
            rows += pf.metadata.num_rows
            if not kinds.get(config, True):
                continue
            if _check_schema(path, rel, pf.schema_arrow, header, config, split, report):
                try:
                    _check_rows(path, rel, config, split, report, seen_ids, images, rewards, batch_rows)
                except (OSError, pa.ArrowException) as exc:  # corrupt pages behind a good footer
                    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    report.add(Issue("layout", f"not a readable parquet file: its data does not decode ({msg})",
                                     file=rel, config=config, split=split))
        report.configs[config][split] = rows
        if rows == 0 and s.files:
            report.warnings.append(
                f"config '{config}' split '{split}' is empty (0 rows): polars, DuckDB and `geodata sql` read its "
                f"columns, but datasets.load_dataset(path, '{config}') cannot load a split without rows "
                f"(huggingface/datasets#8401)"
            )
        if kinds.get(config, True):
            report.rows += rows
    notes = ds.manifest.stats.notes if ds.manifest is not None else {}
    report.warnings += [f"{k}: {v}" for k, v in sorted(notes.items()) if k.endswith(".warning") and v]
    if not any(kinds.values()):
        report.add(Issue("schema", "no config holds schema rows (id, images, prompt, completion, solution)"))
    elif report.rows == 0 and not any(i.check == "layout" for i in report.issues):
        report.add(Issue("layout", "the dataset has 0 rows (an empty build is never a valid dataset)"))
    return report


def iter_issue_lines(report: ValidationReport, limit: int | None = None) -> Iterable[str]:
    """The kept issues as one line each (``check: file row N, id 'x': message``)."""
    for issue in report.issues[:limit]:
        yield issue.line()
