"""Publish a built dataset to the Hugging Face Hub.

``publish(name, repo_id)`` runs, in order, and stops at the first failure, before anything is
sent:

1. the repo id check (``ORG/NAME``, the Hub's characters and length);
2. ``geodata validate`` (schema, images, ids, reward self-check): a dataset that fails is never
   uploaded;
3. the token check (``HF_TOKEN`` or the ``hf auth login`` cache; skipped with ``dry_run``);
4. assembly of the exact folder the Hub will hold (``build/hub/<name>/``): the shards
   (hard links), ``manifest.json``, the report figures if ``geodata report`` ran, and a
   completed card (license per source, citations, ``source_datasets``, ``size_categories``,
   ``task_categories``, provenance, validation summary);
5. the upload with ``huggingface_hub``: ``create_repo(exist_ok=True)``, then commits of at
   most 50 files. Files already on the Hub with the same content (LFS sha256 or git blob id)
   are skipped, so a rerun after an interruption resumes; the card goes in the last commit, so
   the Hub shows the new configs only once every shard they name is there. Remote files that
   the folder no longer holds (stale shards of an older build) are deleted.

The token is passed to ``huggingface_hub`` and nowhere else: it is never printed, logged or
written into the card.

Examples
--------
>>> from geodata.publish import check_repo_id
>>> check_repo_id("my-org/mp16-rand-500k")
'my-org/mp16-rand-500k'
>>> check_repo_id("my org/x")
Traceback (most recent call last):
...
geodata.publish.PublishError: repo id 'my org/x': use letters, digits, '-', '_' and '.' only, as ORG/NAME (at most 96 characters, no '--' or '..', not starting or ending with '-' or '.')
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from .dataset import ownership as own
from .dataset.ownership import link_or_copy as _link_or_copy
from .dataset.card import markers, size_category
from .dataset import Dataset
from .paths import catalog_dirs, publish_dir
from ._cache import file_sha256 as _sha256
from .errors import GeodataError
from .validate import (
    ValidationError,
    ValidationReport,
    row_configs,
    validate_dataset,
)

__all__ = [
    "PublishError",
    "UploadError",
    "PublishResult",
    "PAPERS",
    "check_repo_id",
    "resolve_token",
    "size_category",
    "complete_card",
    "assemble",
    "plan_upload",
    "upload",
    "publish",
]

MAX_FILES_PER_COMMIT = 50

_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"^{_REPO_PART}/{_REPO_PART}$")

#: the three papers whose data recipes geodata implements (cited on every card)
PAPERS: dict[str, str] = {
    "Geo-R": """@inproceedings{wu2026georeasoning,
  title={Vision-Language Reasoning for Geolocalization: A Reinforcement Learning Approach},
  author={Wu, Biao and Fang, Meng and Chen, Ling and Xu, Ke and Cheng, Tao and Wang, Jun},
  booktitle={Proceedings of the AAAI Conference on Artificial Intelligence (AAAI)},
  year={2026},
  note={Geo-R; arXiv:2601.00388}
}""",
    "Geo-R1": """@article{xu2025geor1,
  title={Geo-R1: Unlocking VLM Geospatial Reasoning with Cross-View Reinforcement Learning},
  author={Xu, Chenhui and Yu, Fuxun and Bianco, Michael J. and Kovarskiy, Jacob and Tang, Raphael and Zhang, Qi and Xu, Zirui and LeVine, Will and Dubbs, Brandon and Liao, Heming and Burgess, Cassandra and Bag, Suvam and Patravali, Jay and Kukal, Rupanjali and Figueroa, Mikael and Madhok, Rishi and Karianakis, Nikolaos and Xiong, Jinjun},
  journal={arXiv preprint arXiv:2510.00072},
  year={2025}
}""",
    "GeoVLM-R1": """@article{fiaz2025geovlmr1,
  title={GeoVLM-R1: Reinforcement Fine-Tuning for Improved Remote Sensing Reasoning},
  author={Fiaz, Mustansar and Debary, Hiyam and Fraccaro, Paolo and Paudel, Danda and Van Gool, Luc and Khan, Fahad Shahbaz and Khan, Salman},
  journal={arXiv preprint arXiv:2509.25026},
  year={2025}
}""",
}

CARD_START, CARD_END = markers("publish")  # the start is also geodata's marker of a publish folder (dataset.ownership)


class PublishError(GeodataError):
    """Publishing stopped before any upload (bad repo id, no token, failed validation ...)."""


class UploadError(GeodataError):
    """An upload stopped part-way; files already committed are skipped on the next run."""


@dataclass
class PublishResult:
    """What ``publish`` did: the assembled folder and, unless a dry run, the upload."""

    repo_id: str
    folder: Path
    dry_run: bool
    validation: ValidationReport | None = None
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo_id}"


# -- checks before anything is sent ---------------------------------------------------------------


def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` when it is a valid ``ORG/NAME`` dataset repo id, else raise PublishError."""
    if (
        not isinstance(repo_id, str)
        or not REPO_ID_RE.fullmatch(repo_id)
        or len(repo_id) > 96
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise PublishError(
            f"repo id {repo_id!r}: use letters, digits, '-', '_' and '.' only, as ORG/NAME "
            "(at most 96 characters, no '--' or '..', not starting or ending with '-' or '.')"
        )
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:  # keep the hub's own rules authoritative
        raise PublishError(f"repo id {repo_id!r}: {str(exc).lower()}") from None
    return repo_id


def resolve_token(token: str | None = None) -> str:
    """The token to upload with: ``token``, else ``HF_TOKEN``, else the login cache.

    Raises PublishError (without ever echoing a token) when none is found.
    """
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise PublishError(
            "no hugging face token: set HF_TOKEN or run `hf auth login` (or use --dry-run to only assemble)"
        )
    return found


# -- the card ---------------------------------------------------------------------------------------


def load_catalog(name: str) -> dict[str, Any] | None:
    """The ``catalogs/<name>.yaml`` entry of a source, or None when there is none."""
    for d in catalog_dirs():
        f = d / f"{name}.yaml"
        if f.is_file():
            data = yaml.safe_load(f.read_text()) or {}
            return data if isinstance(data, dict) else None
    return None


def _sources(ds: Dataset) -> list[tuple[str, dict[str, Any]]]:
    """(source name, catalog entry) for every source of the build, catalog looked up by reader then name."""
    out = []
    for sname, src in (ds.spec.get("sources") or {}).items():
        reader = (src or {}).get("reader") or sname
        cat = load_catalog(reader) or load_catalog(sname) or {"name": sname}
        out.append((sname, cat))
    return out


def _uniq(items: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for x in items:
        if x and x not in seen:
            seen.append(x)
    return seen


def card_metadata(ds: Dataset, header: dict[str, Any]) -> dict[str, Any]:
    """The Hub metadata the card needs, merged over the build's card header (build wins on configs)."""
    spec_card = ds.spec.get("card") or {}
    sources = _sources(ds)
    licenses = _uniq(cat.get("license") for _, cat in sources)
    declared = spec_card.get("license")
    meta = dict(header)
    if declared and declared != "other":
        meta["license"] = declared
    elif len(licenses) == 1:
        meta["license"] = licenses[0]
    else:
        meta["license"] = "other"
    if meta["license"] == "other" and not header.get("license_name"):
        # the Hub asks for a name with 'other'; the card's Licenses section lists each source's
        meta["license_name"] = "mixed-source-licenses" if len(licenses) > 1 else "source-dataset-license"
    meta["source_datasets"] = _uniq(
        [*(header.get("source_datasets") or []), *(spec_card.get("source_datasets") or []),
         *(cat.get("source_dataset") for _, cat in sources)]
    ) or ["original"]
    row_names = {c for c, rows in row_configs(ds).items() if rows}
    rows = sum(e.num_rows for c, _, e in ds.split_entries() if c in row_names)
    meta["size_categories"] = [size_category(rows)]
    meta["task_categories"] = _uniq([*(header.get("task_categories") or []), *(spec_card.get("task_categories") or [])]) or [
        "image-text-to-text"
    ]
    meta["tags"] = _uniq([*(header.get("tags") or []), *(spec_card.get("tags") or []), "geodata"])
    meta.setdefault("pretty_name", ds.name)
    meta.setdefault("language", ["en"])
    return meta


def _section(title: str, lines: Iterable[str]) -> str:
    return f"## {title}\n\n" + "\n".join(lines).rstrip() + "\n"


def publish_section(ds: Dataset, body: str, validation: ValidationReport | None, figures: list[str]) -> str:
    """The card's ``publish`` section: licenses, provenance, validation, figures and citations.

    ``body`` is the rest of the card: what it already states (provenance, figure links,
    citations) is not repeated.
    """
    manifest = ds.manifest
    spec_card = ds.spec.get("card") or {}
    sources = _sources(ds)
    out = []
    # licenses, per source
    lic = ["| source | license | homepage |", "| --- | --- | --- |"]
    for sname, cat in sources:
        lic.append(f"| {cat.get('title') or sname} | {cat.get('license') or 'unknown'} | {cat.get('homepage') or ''} |")
    lic += ["", "Images keep the license of their source; the prompts, completions and solutions were generated by geodata "
            "from the sources' metadata."]
    out.append(_section("Licenses", lic))
    # provenance, unless the build's card already states it
    # (a geodata build's card states its provenance, without path- and mtime-bound fingerprints)
    if manifest.spec_fingerprint and manifest.spec_fingerprint not in body:
        prov = [f"- dataset fingerprint: `{manifest.fingerprint}`",
                f"- spec fingerprint: `{manifest.spec_fingerprint}`",
                f"- geodata version: `{manifest.geodata_version}`"]
        prov += [f"- input `{k}`: `{v}`" for k, v in manifest.inputs.items()]
        steps = manifest.stats.steps
        if steps:
            prov += ["", "| step | rows in | rows out | drops |", "| --- | ---: | ---: | --- |"]
            for st in steps:
                drops = ", ".join(f"{k}: {v}" for k, v in (st.get("drops") or {}).items()) or "-"
                prov.append(f"| {st.get('step')} | {st.get('rows_in')} | {st.get('rows_out')} | {drops} |")
        out.append(_section("Provenance", prov))
    # validation
    if validation is not None:
        val = [f"`geodata validate` passed on {validation.rows} rows ({validation.images_checked} images decoded, "
               "ids unique, schema and features checked)."]
        if validation.rewards:
            val += ["", "Reward self-check (each gold completion must score the maximum of its task's reward):", "",
                    "| task | reward | rows | at max | max score |", "| --- | --- | ---: | ---: | ---: |"]
            for task, r in sorted(validation.rewards.items()):
                val.append(f"| {task} | {r['reward']} | {r['rows']} | {r['at_max']} | {r['max_score']:g} |")
        out.append(_section("Validation", val))
    # figures (written by `geodata report`), unless the card already links them
    missing = [f for f in figures if f.endswith(".png") and f"({f})" not in body]
    if missing:
        out.append(_section("Figures", [f"![{Path(f).stem}]({f})" for f in missing]))
    # citations
    entries = [*PAPERS.values(), *(str(cat["citation"]) for _, cat in sources if cat.get("citation")),
               *(str(c) for c in spec_card.get("citations") or [] if c)]
    keys_seen: set[str] = set()
    todo = []
    for entry in entries:
        key = _bibkey(entry)
        if key in keys_seen or (key and key in body):  # the build's card already cites it
            continue
        keys_seen.add(key)
        todo.append(entry.strip() + "\n")
    if todo:
        title = "Citation" if "## Citation" not in body else "Further citations"
        out.append(_section(title, [
            "If you use this dataset, please cite the papers whose recipes it follows and its sources:", "",
            "```bibtex", *todo, "```"]))
    return "\n".join(out)


def _bibkey(entry: str) -> str:
    m = re.search(r"@\w+\s*\{\s*([^,\s]+)\s*,", entry)
    return m.group(1) if m else entry.strip()


def complete_card(ds: Dataset, validation: ValidationReport | None = None, figures: list[str] | None = None) -> str:
    """The README.md the Hub will show: the dataset's card with its metadata and ``publish`` section.

    Idempotent: the ``publish`` section of an earlier run is replaced, not repeated.
    """
    card = ds.card
    if not card.sections and not card.text.strip():
        spec_card = ds.spec.get("card") or {}
        card = card.with_section("build", f"# {spec_card.get('pretty_name') or ds.name}\n\n{spec_card.get('description', '')}")
    meta = card_metadata(ds, card.header)
    extra = publish_section(ds, card.body(without=("publish",)), validation, figures or [])
    return card.with_header(meta).with_section("publish", extra).render()


def default_publish_dir(name: str) -> Path:
    """``$GEODATA_PUBLISH_DIR/<name>``, else ``build/hub/<name>`` (:func:`geodata.paths.publish_dir`)."""
    return publish_dir(name)


def _contents(ds: Dataset) -> tuple[list[str], list[str]]:
    """(shards, report files) an assembled folder holds, relative paths.

    The report files are the ones ``geodata report`` recorded (never other files in ``report/``).
    """
    rec = ds.report
    figures = sorted(f for f in (rec.files if rec else []) if own._inside(f) and (ds.path / f).is_file())
    return sorted(ds.listed_files()), figures


def _check_folder(ds: Dataset, folder: Path) -> tuple[list[str], list[str]]:
    """(shards, report files) of ``ds``, once ``folder`` is checked as a publish folder to write.

    A file already at one of those paths counts as geodata's only when it holds the same bytes
    (an interrupted or earlier assembly): anything else there is refused, never replaced.
    """
    files, figures = _contents(ds)
    own.check_out(folder, "publish", expect={rel: ds.path / rel for rel in files + figures})
    return files, figures


def assemble(
    name_or_path: str | Path,
    out: str | Path | None = None,
    datasets_dir: str | Path | None = None,
    validation: ValidationReport | None = None,
) -> Path:
    """Write the exact folder the Hub will hold and return it.

    It holds every shard the manifest lists, ``manifest.json``, the report figures
    (``report/*.png``, ``report/summary.md``) when present, and the completed ``README.md``;
    nothing else. The folder must be new, empty or one geodata assembled (a geodata manifest
    and a card with :data:`~geodata.dataset.ownership.PUBLISH_MARKER`): only the files its manifest
    lists are ever replaced or removed, and a file geodata did not put there is an error (it
    would be uploaded).

    Examples
    --------
    >>> from geodata.publish import assemble                    # doctest: +SKIP
    >>> folder = assemble("mp16-rand-500k")                      # doctest: +SKIP
    >>> import datasets; datasets.load_dataset(str(folder))     # doctest: +SKIP
    """
    ds = Dataset.open(name_or_path, datasets_dir)
    path = ds.path
    folder = Path(out) if out is not None else default_publish_dir(ds.name)
    if folder.resolve() == path.resolve():
        raise PublishError(f"{folder}: the publish folder must differ from the dataset folder")
    files, figures = _check_folder(ds, folder)
    wanted = set(files) | set(figures) | {"manifest.json", "README.md"}
    stale = own.dataset_files(folder) - wanted if own.is_publish_dir(folder) else set()
    emptied: set[Path] = set()
    for rel in sorted(stale):  # files of an earlier assembly, listed by its (geodata) manifest
        old = folder / rel
        if old.is_file() and not old.is_symlink():
            old.unlink()
            emptied.update(p for p in old.parents if folder in p.parents)
    for rel in files + figures:
        if not (path / rel).is_file():
            raise PublishError(f"{path / rel}: listed in the manifest but missing (rebuild the dataset)")
    # manifest and card first: a folder left by an interrupted run is still recognisably geodata's
    _link_or_copy(path / "manifest.json", folder / "manifest.json")
    (folder / "README.md").write_text(complete_card(ds, validation, figures))
    for rel in files + figures:
        _link_or_copy(path / rel, folder / rel)
    for d in sorted(emptied, key=lambda p: -len(p.parts)):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    return folder


# -- uploading ---------------------------------------------------------------------------------------


def git_blob_id(path: Path) -> str:
    """The git object id of a file (what the Hub reports as ``blob_id`` for non-LFS files)."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same(local: Path, remote: Any) -> bool:
    lfs = getattr(remote, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        return lfs.sha256 == _sha256(local)
    return getattr(remote, "blob_id", None) == git_blob_id(local)


def plan_upload(folder: Path, remote: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(files to add, files already there, remote files to delete) for ``folder`` against ``remote``.

    ``remote`` maps a path in the repo to its ``RepoFile``; files to add are ordered so that
    ``README.md`` and ``manifest.json`` come last.
    """
    local = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file())
    last = ["manifest.json", "README.md"]
    add, same = [], []
    for rel in sorted(local, key=lambda r: (r in last, last.index(r) if r in last else 0, r)):
        if rel in remote and _same(folder / rel, remote[rel]):
            same.append(rel)
        else:
            add.append(rel)
    delete = sorted(r for r in remote if r not in set(local) and r != ".gitattributes")
    return add, same, delete


def upload(
    folder: Path,
    repo_id: str,
    *,
    token: str,
    private: bool = False,
    api: Any = None,
    max_files: int = MAX_FILES_PER_COMMIT,
    log: Callable[[str], None] = lambda msg: None,
) -> PublishResult:
    """Upload an assembled folder to the dataset repo ``repo_id`` in commits of ≤ ``max_files`` files."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.hf_api import RepoFile

    api = api if api is not None else HfApi()
    folder = Path(folder)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True, token=token)
        if private:
            info = api.repo_info(repo_id, repo_type="dataset", token=token)
            if getattr(info, "private", True) is False:
                raise PublishError(
                    f"repo {repo_id} exists and is public; refusing to upload a --private dataset into it"
                )
        remote = {
            f.path: f
            for f in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, token=token)
            if isinstance(f, RepoFile) or (hasattr(f, "blob_id") and hasattr(f, "path"))
        }
    except GeodataError:
        raise
    except Exception as exc:  # the hub's HTTP errors: one line, nothing uploaded yet
        raise PublishError(
            f"{repo_id}: cannot create or list the repo ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); nothing was uploaded"
        ) from exc
    add, same, delete = plan_upload(folder, remote)
    result = PublishResult(repo_id=repo_id, folder=folder, dry_run=False, skipped=same)
    ops: list[Any] = [CommitOperationAdd(path_in_repo=r, path_or_fileobj=str(folder / r)) for r in add if r not in ("README.md", "manifest.json")]
    ops += [CommitOperationDelete(path_in_repo=r) for r in delete]
    final = [CommitOperationAdd(path_in_repo=r, path_or_fileobj=str(folder / r)) for r in add if r in ("README.md", "manifest.json")]
    batches = [ops[i : i + max_files] for i in range(0, len(ops), max_files)]
    if final:
        if batches and len(batches[-1]) + len(final) <= max_files:
            batches[-1] += final
        else:
            batches.append(final)
    if not batches:
        log(f"{repo_id}: up to date ({len(same)} files already there)")
        return result
    for k, batch in enumerate(batches, 1):
        n_add = sum(isinstance(o, CommitOperationAdd) for o in batch)
        n_del = len(batch) - n_add
        msg = f"geodata: upload {folder.name} ({k}/{len(batches)})"
        log(f"commit {k}/{len(batches)}: {n_add} files" + (f", {n_del} deletions" if n_del else ""))
        try:
            info = api.create_commit(repo_id, operations=batch, commit_message=msg, repo_type="dataset", token=token)
        except Exception as exc:
            done = f"{len(result.uploaded)} files committed before it" if result.uploaded else "nothing committed"
            raise UploadError(
                f"{repo_id}: commit {k}/{len(batches)} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"{done}; rerun the same command to resume"
            ) from exc
        result.commits.append(str(getattr(info, "commit_url", info)))
        result.uploaded += [o.path_in_repo for o in batch if isinstance(o, CommitOperationAdd)]
        result.deleted += [o.path_in_repo for o in batch if isinstance(o, CommitOperationDelete)]
    return result


def publish(
    name_or_path: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    api: Any = None,
    datasets_dir: str | Path | None = None,
    out: str | Path | None = None,
    images: bool = True,
    log: Callable[[str], None] = lambda msg: None,
) -> PublishResult:
    """Validate, assemble and (unless ``dry_run``) upload a built dataset; see the module doc.

    Raises PublishError or ValidationError before any upload when the repo id is bad, the
    dataset fails validation, or no token is found.

    Examples
    --------
    >>> from geodata.publish import publish                                   # doctest: +SKIP
    >>> r = publish("mp16-rand-500k", "my-org/mp16-rand-500k", dry_run=True)   # doctest: +SKIP
    >>> r.folder                                                              # doctest: +SKIP
    PosixPath('build/hub/mp16-rand-500k')
    """
    check_repo_id(repo_id)
    ds = Dataset.open(name_or_path, datasets_dir)
    path = ds.path
    _check_folder(ds, Path(out) if out is not None else default_publish_dir(ds.name))  # before any work
    log(f"validating {path}")
    report = validate_dataset(path, images=images)
    if not report.ok:
        lines = [i.line() for i in report.issues[:5]]
        more = sum(report.counts.values()) - len(lines)
        raise ValidationError(
            f"{report.name} fails validation, nothing was published: " + "; ".join(lines)
            + (f"; and {more} more (run `geodata validate {report.name}`)" if more > 0 else "")
        )
    tok = None
    if not dry_run:
        tok = resolve_token(token)
        if api is None:
            from huggingface_hub.constants import is_offline_mode

            if is_offline_mode():
                raise PublishError(
                    "HF_HUB_OFFLINE=1 is set (the Makefile exports it for builds): run with HF_HUB_OFFLINE=0 "
                    "to upload, or use --dry-run"
                )
    folder = assemble(path, out=out, validation=report)
    log(f"assembled {folder}")
    if dry_run:
        return PublishResult(repo_id=repo_id, folder=folder, dry_run=True, validation=report)
    assert tok is not None
    result = upload(folder, repo_id, token=tok, private=private, api=api, log=log)
    result.validation = report
    return result


def folder_summary(folder: Path) -> dict[str, Any]:
    """Files and bytes of an assembled folder (for the CLI's dry-run output)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "tree": [p.relative_to(folder).as_posix() for p in files],
    }
