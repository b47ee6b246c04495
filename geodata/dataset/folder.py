"""The one typed object that owns a built dataset: :class:`Dataset` over its ``manifest.json``.

Every command that reads a built dataset (show, sql, validate, report, publish, eval, the
training backends) opens it here; nobody re-parses the manifest by hand.

Examples
--------
>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()) / "toy"
>>> _ = (d / "data").mkdir(parents=True)
>>> import polars as pl
>>> pl.DataFrame({"id": ["a", "b"]}).write_parquet(d / "data" / "train-00000-of-00001.parquet")
>>> m = {"written_by": "geodata", "name": "toy", "fingerprint": "f", "geodata_version": "0",
...      "rows": 2, "configs": {"default": {"train": {"num_rows": 2,
...      "files": ["data/train-00000-of-00001.parquet"]}}}, "stats": {}}
>>> _ = (d / "manifest.json").write_text(json.dumps(m))
>>> ds = Dataset.open(d)
>>> ds.name, ds.configs, ds.splits()
('toy', ['default'], ['train'])
>>> ds.read()["id"].to_list()
['a', 'b']
>>> Dataset.open(d / "nope")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
geodata.dataset.DatasetError: no built dataset at .../nope (no manifest.json; run `geodata build nope`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import GeodataError, did_you_mean
from ..paths import datasets_dir, pipeline_dirs
from .card import Card
from .layout import MANIFEST_MARKER, REPORT_MARKER

__all__ = ["Dataset", "DatasetError", "Manifest", "SplitEntry", "FileEntry", "BuildStats", "ReportRecord",
           "datasets_dir"]


def _build_hint(name: str) -> str:
    """``run `geodata build NAME` first`` when a pipeline of that name exists, else the closest pipelines."""
    known = sorted({f.stem for d in pipeline_dirs() if d.is_dir() for f in d.glob("*.yaml")})
    if name in known:
        return f"run `geodata build {name}` first"
    return f"no pipeline '{name}' either{did_you_mean(name, known)}; pipelines: {', '.join(known) or 'none'}"


class DatasetError(GeodataError):
    """A built dataset is missing, or its manifest is unreadable or malformed."""

    __module__ = "geodata.dataset"  # its public home


_default_datasets_dir = datasets_dir  # Dataset.open takes a ``datasets_dir`` argument of this name


class _Model(BaseModel):
    # manifests gain fields over versions; unknown ones are kept, not rejected
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class SplitEntry(_Model):
    """One split of one config: its row count and its shard files (relative paths)."""

    num_rows: int
    files: list[str] = Field(default_factory=list)


class FileEntry(_Model):
    """One shard file: sha256, size in bytes, rows."""

    sha256: str
    bytes: int
    rows: int


class BuildStats(_Model):
    """Per-step statistics, drop counts by reason, and the notes steps attached."""

    steps: list[dict[str, Any]] = Field(default_factory=list)
    drops: dict[str, int] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict)


class Manifest(_Model):
    """The typed content of ``manifest.json`` (what :func:`geodata.engine.build` writes)."""

    written_by: str | None = None
    name: str
    fingerprint: str
    spec_fingerprint: str | None = None
    spec_file: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    #: the sources read from geodata's embedded sample (no root, no environment variable); None
    #: in manifests written before it was recorded
    sample_sources: list[str] | None = None
    #: digest of the size and mtime of every embedded image file (the up-to-date check re-stats them)
    images_digest: str | None = None
    images_files: int = 0
    geodata_version: str
    versions: dict[str, str] = Field(default_factory=dict)
    default_config: str = "default"
    spec: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)
    rows: int = 0
    configs: dict[str, dict[str, SplitEntry]]
    files: dict[str, FileEntry] = Field(default_factory=dict)
    stats: BuildStats = Field(default_factory=BuildStats)

    def content_digest(self) -> str:
        """sha256 over every shard's path and sha256: equal digests mean equal rows and bytes.

        >>> m = Manifest(name="t", fingerprint="f", geodata_version="0", configs={},
        ...              files={"data/a.parquet": {"sha256": "00", "bytes": 1, "rows": 1}})
        >>> m.content_digest() == m.model_copy(update={"fingerprint": "g"}).content_digest()
        True
        """
        import hashlib

        h = hashlib.sha256()
        for rel in sorted(self.files):
            h.update(f"{rel}\0{self.files[rel].sha256}\n".encode())
        return h.hexdigest()


class ReportRecord(_Model):
    """What ``geodata report`` wrote in a dataset folder (``report/.geodata-report.json``).

    ``files`` are relative paths (figures in the order the card shows them, then the summary);
    ``content_digest`` is :meth:`Manifest.content_digest` of the shards the figures were drawn
    from, so a rebuild that writes the same shards keeps the report.
    """

    written_by: str | None = None
    files: list[str] = Field(default_factory=list)
    content_digest: str | None = None

    @property
    def figures(self) -> list[str]:
        return [f for f in self.files if f.endswith(".png")]

    @classmethod
    def read(cls, folder: Path) -> "ReportRecord | None":
        """The record in ``folder``, or None (no report, or a file geodata did not write)."""
        try:
            rec = cls.model_validate(json.loads((Path(folder) / REPORT_MARKER).read_text()))
        except (OSError, ValueError):  # ValidationError is a ValueError
            return None
        return rec if rec.written_by == MANIFEST_MARKER[1] else None


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    return f"field '{where}': {err.get('msg', 'invalid')}"


class Dataset:
    """A built dataset folder and its typed manifest.

    Open one with :meth:`open` (a name under ``$GEODATA_DATASETS`` or a folder path).
    """

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = Path(path)
        self.manifest = manifest

    # -- opening ----------------------------------------------------------------------------
    @staticmethod
    def _is_path(p: Path) -> bool:
        return (p / "manifest.json").is_file() or p.is_absolute() or len(p.parts) > 1

    @classmethod
    def resolve(cls, name_or_path: str | Path, datasets_dir: str | Path | None = None) -> Path:
        """The folder of a dataset, by the one rule every command uses.

        A folder holding ``manifest.json``, an absolute path or one with a ``/`` is taken as
        it is; a plain name is ``<datasets_dir>/<name>`` (default :func:`datasets_dir`).
        """
        p = Path(name_or_path).expanduser()
        return p if cls._is_path(p) else Path(datasets_dir or _default_datasets_dir()) / p

    @classmethod
    def open(cls, name_or_path: str | Path, datasets_dir: str | Path | None = None) -> "Dataset":
        """Open a built dataset; a missing or corrupt manifest is a one-line :class:`DatasetError`.

        ``name_or_path`` is resolved by :meth:`resolve`; for a name that is not built, the
        message lists the datasets that are.
        """
        folder = cls.resolve(name_or_path, datasets_dir)
        mpath = folder / "manifest.json"
        try:
            text = mpath.read_text()
        except FileNotFoundError:
            name = Path(name_or_path).name
            if cls._is_path(Path(name_or_path).expanduser()):
                raise DatasetError(f"no built dataset at {folder} (no manifest.json; run `geodata build {name}`)") from None
            base = folder.parent
            known = sorted(d.name for d in base.glob("*") if (d / "manifest.json").is_file()) if base.is_dir() else []
            raise DatasetError(
                f"no built dataset '{name}' in {base}{did_you_mean(name, known)} (built: {', '.join(known) or 'none'}; "
                f"{_build_hint(name)})"
            ) from None
        except OSError as e:
            raise DatasetError(f"{mpath}: cannot read ({e.strerror or e})") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{mpath}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        if not isinstance(raw, dict):
            raise DatasetError(f"{mpath}: not a geodata manifest (a JSON {type(raw).__name__}, not an object)")
        try:
            manifest = Manifest.model_validate(raw)
        except ValidationError as e:
            raise DatasetError(f"{mpath}: not a geodata manifest ({_first_error(e)})") from None
        return cls(folder, manifest)

    # -- what it holds ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    @property
    def configs(self) -> list[str]:
        """Config names, in manifest order."""
        return list(self.manifest.configs)

    @property
    def default_config(self) -> str:
        return self.manifest.default_config if self.manifest.default_config in self.manifest.configs else self.configs[0]

    @property
    def num_rows(self) -> int:
        return self.manifest.rows

    @property
    def card_path(self) -> Path:
        return self.path / "README.md"

    @property
    def stats(self) -> BuildStats:
        return self.manifest.stats

    @property
    def spec(self) -> dict[str, Any]:
        """The resolved spec the dataset was built from (as recorded)."""
        return self.manifest.spec

    @property
    def card(self) -> "Card":
        """The dataset card, parsed into its header and named sections (see :mod:`geodata.card`)."""
        try:
            text = self.card_path.read_text()
        except FileNotFoundError:
            return Card()
        except OSError as e:
            raise DatasetError(f"{self.card_path}: cannot read ({e.strerror or e})") from None
        try:
            return Card.parse(text)
        except GeodataError as e:
            raise DatasetError(f"{self.card_path}: {str(e).removeprefix('card: ')}") from None

    def write_card(self, card: "Card") -> Path:
        """Write ``card`` as this dataset's README.md."""
        self.card_path.write_text(card.render())
        return self.card_path

    @property
    def report(self) -> ReportRecord | None:
        """What ``geodata report`` recorded here, or None (no report, or not geodata's record)."""
        return ReportRecord.read(self.path)

    def report_is_current(self) -> bool:
        """True when the report's figures were drawn from exactly these shards."""
        rec = self.report
        return bool(rec and rec.content_digest and rec.content_digest == self.manifest.content_digest())

    def config(self, config: str | None = None) -> str:
        """``config`` checked against the dataset (``None`` → the default config)."""
        c = config or self.default_config
        if c not in self.manifest.configs:
            raise DatasetError(f"{self.name}: config '{c}' not in {sorted(self.manifest.configs)}")
        return c

    def splits(self, config: str | None = None) -> list[str]:
        """Split names of one config."""
        return list(self.manifest.configs[self.config(config)])

    def split_entries(self) -> list[tuple[str, str, SplitEntry]]:
        """Every ``(config, split, entry)`` of the dataset, in manifest order."""
        return [(c, s, e) for c, splits in self.manifest.configs.items() for s, e in splits.items()]

    def files(self, config: str | None = None, split: str | None = None) -> list[Path]:
        """Absolute shard paths of one config (all its splits, or one)."""
        c = self.config(config)
        splits = self.manifest.configs[c]
        if split is not None and split not in splits:
            raise DatasetError(f"{self.name}: config '{c}' has no split '{split}' (splits: {sorted(splits)})")
        names = [split] if split is not None else list(splits)
        return [self.path / f for s in names for f in splits[s].files]

    def listed_files(self) -> set[str]:
        """Relative paths of every shard the manifest lists (configs and the files table)."""
        out = set(self.manifest.files)
        for _, _, e in self.split_entries():
            out.update(e.files)
        return out

    def read(self, config: str | None = None, split: str | None = None, columns: list[str] | None = None) -> Any:
        """One config (or split) as a polars DataFrame."""
        import polars as pl

        files = self.files(config, split)
        if not files:
            raise DatasetError(f"{self.name}: config '{self.config(config)}' has no shard files")
        return pl.read_parquet([str(f) for f in files], columns=columns)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, path={str(self.path)!r}, rows={self.num_rows})"
