"""The one rule for touching folders: geodata deletes or replaces only what it wrote.

What geodata wrote is recognised by its own marker, never by a folder's name:

* a **dataset** folder holds ``manifest.json`` with ``"written_by": "geodata"`` (manifests of
  older geodata versions, which carry ``geodata_version`` and ``fingerprint``, count too); the
  files geodata wrote there are the ones the manifest lists plus ``manifest.json``,
  ``README.md``, ``build_stats.json`` and :data:`IMAGES_SIDECAR`;
* a **sample** folder holds ``.complete`` with the text :data:`SAMPLE_TEXT`;
* a **publish** folder (``geodata publish --out``) holds a geodata ``manifest.json`` and a
  ``README.md`` carrying :data:`PUBLISH_MARKER` (the section ``geodata publish`` adds to the card);
  the files geodata put there are the ones that manifest lists, plus the card and the figures;
* a **temporary** folder (``.NAME.tmp-PID``) holds :data:`TEMP_MARKER` until it is swapped in.

Every command that writes a folder calls :func:`check_out` before any work: a missing or empty
folder, or one with the marker of its kind, may be (re)written; anything else — a file, a
non-empty folder without the marker, ``.``, ``/``, ``$HOME``, the current directory or one of
its ancestors — is a one-line :class:`~geodata.errors.OwnershipError` naming the path.
Replacing a dataset folder (:func:`swap_in`) keeps every file in it that geodata did not write.
A single output file (``geodata eval --out``) follows :func:`check_out_file`.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> check_out(d / "new", "dataset") == d / "new"
True
>>> _ = (d / "thesis").mkdir(); _ = (d / "thesis" / "ch1.tex").write_text("...")
>>> check_out(d / "thesis", "dataset")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
geodata.errors.OwnershipError: --out .../thesis: a non-empty folder that geodata did not write (no geodata manifest.json); choose an empty or new folder
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterable, Literal, Mapping

from ..errors import OwnershipError
from .folder import Dataset, DatasetError, ReportRecord
from .layout import (FIXED_FILES, IMAGES_SIDECAR, MANIFEST_MARKER, PUBLISH_MARKER, REPORT_MARKER, SAMPLE_MARKER,
                     SAMPLE_TEXT, TEMP_MARKER)

__all__ = [
    "MANIFEST_MARKER", "IMAGES_SIDECAR", "SAMPLE_MARKER", "SAMPLE_TEXT", "PUBLISH_MARKER", "TEMP_MARKER",
    "check_out", "check_out_file", "mark_table", "is_dataset", "is_sample", "is_publish_dir", "dataset_files", "foreign_files",
    "make_temp", "remove_temp", "clean_stale_temps", "swap_in", "remove_owned", "restore_interrupted",
    "mark_sample", "mark_report", "report_files", "REPORT_MARKER", "link_or_copy", "carry_report",
]

Kind = Literal["dataset", "sample", "publish"]

_FIXED = FIXED_FILES


# -- recognising what geodata wrote ---------------------------------------------------------------


def _manifest(folder: Path) -> dict | None:
    try:
        m = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def is_dataset(folder: Path) -> bool:
    """True when ``folder/manifest.json`` is a manifest geodata wrote."""
    m = _manifest(folder)
    if m is None:
        return False
    key, val = MANIFEST_MARKER
    return m.get(key) == val or ("geodata_version" in m and "fingerprint" in m and "configs" in m)


def is_sample(folder: Path) -> bool:
    """True when ``folder`` holds geodata's sample marker (``.complete`` with its text)."""
    try:
        return (Path(folder) / SAMPLE_MARKER).read_text() == SAMPLE_TEXT
    except OSError:
        return False


def mark_sample(folder: Path) -> None:
    """Write the sample marker into ``folder``."""
    (Path(folder) / SAMPLE_MARKER).write_text(SAMPLE_TEXT)


def is_publish_dir(folder: Path) -> bool:
    """True when ``folder`` is a publish folder geodata assembled (see the module doc)."""
    try:
        card = (Path(folder) / "README.md").read_text(errors="replace")
    except OSError:
        return False
    return PUBLISH_MARKER in card and is_dataset(folder)


def link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` (a hard link, else a copy); ``dst`` must be a file geodata wrote."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def mark_report(folder: Path, files: Iterable[str], content_digest: str | None = None) -> None:
    """Record the files ``geodata report`` wrote in a dataset folder (relative paths, in order)
    and the content digest of the shards they show (see :class:`geodata.dataset.ReportRecord`)."""
    body = {MANIFEST_MARKER[0]: MANIFEST_MARKER[1], "files": list(dict.fromkeys(files)),
            "content_digest": content_digest}
    (Path(folder) / REPORT_MARKER).write_text(json.dumps(body, indent=1) + "\n")


def report_files(folder: Path) -> set[str]:
    """The files ``geodata report`` recorded in a dataset folder (with its marker)."""
    rec = ReportRecord.read(Path(folder))
    if rec is None:
        return set()
    return {f for f in rec.files if f.startswith("report/")} | {REPORT_MARKER}


def dataset_files(folder: Path) -> set[str]:
    """Relative paths geodata wrote in a dataset folder (empty when it holds no geodata manifest).

    The manifest's shards, the fixed files, and what ``geodata report`` recorded in
    :data:`REPORT_MARKER`.
    """
    if not is_dataset(folder):
        return set()
    try:
        files = Dataset.open(folder).listed_files()
    except DatasetError:  # a geodata manifest of another shape: its fixed files only
        files = set()
    return {f for f in files | report_files(folder) if _inside(f)} | set(_FIXED)


def _inside(rel: str) -> bool:
    """True for a plain relative path below the folder: a listed ``../x`` or ``/x`` is never ours.

    >>> [_inside(r) for r in ("data/train-00000-of-00001.parquet", "../thesis.tex", "/etc/passwd", "a/../../b", "")]
    [True, False, False, False, False]
    """
    p = PurePosixPath(str(rel).replace("\\", "/"))
    return bool(str(rel)) and not p.is_absolute() and ".." not in p.parts and not PureWindowsPath(str(rel)).drive


def _all_files(folder: Path) -> list[str]:
    out = []
    for d, dirs, names in os.walk(folder):
        dirs.sort()
        for n in sorted(names):
            out.append((Path(d) / n).relative_to(folder).as_posix())
        for n in dirs:
            if (Path(d) / n).is_symlink():
                out.append((Path(d) / n).relative_to(folder).as_posix())
    return out


def _same_bytes(a: Path, b: Path) -> bool:
    import filecmp

    try:
        return a.is_file() and not a.is_symlink() and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def foreign_files(folder: Path, expect: Mapping[str, Path] | None = None) -> list[str]:
    """Files in ``folder`` that geodata did not write (relative paths, sorted).

    Geodata's are those of :func:`dataset_files`, and a file at a path of ``expect`` (where the
    caller is about to put the file it maps to) that already holds exactly those bytes: replacing
    it changes nothing. A different file at such a path is foreign: it is never replaced.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    ours = dataset_files(folder)
    expect = expect or {}
    return [f for f in _all_files(folder)
            if f not in ours and not (f in expect and _same_bytes(folder / f, Path(expect[f])))]


# -- the --out rule ---------------------------------------------------------------------------------


def _protected(path: Path) -> str | None:
    p = path.resolve()
    cwd = Path.cwd().resolve()
    if p == Path(p.anchor):
        return "the filesystem root"
    if p == Path.home().resolve():
        return "your home folder"
    if p == cwd:
        return "the current folder"
    if p in cwd.parents:
        return "an ancestor of the current folder"
    return None


_WHAT = {
    "dataset": "no geodata manifest.json",
    "sample": f"no geodata {SAMPLE_MARKER} sample marker",
    "publish": "no geodata manifest.json and card",
}


def check_out(path: Path | str, kind: Kind, flag: str = "--out", expect: Mapping[str, Path] | None = None) -> Path:
    """Return ``path`` when geodata may write a ``kind`` folder there, else raise OwnershipError.

    Allowed: a path that does not exist, an empty folder, or a folder carrying the marker of
    ``kind``. For ``publish`` the marked folder must also hold nothing geodata did not put there
    (see :func:`foreign_files`; ``expect`` maps each path the caller writes to its source):
    everything in it would be uploaded, and only geodata's own files are replaced.
    """
    path = Path(path)
    why = _protected(path)
    if why is not None:
        raise OwnershipError(f"{flag} {path}: is {why}; geodata never writes a dataset there, choose a new folder")
    if path.is_symlink():
        raise OwnershipError(f"{flag} {path}: is a symlink; geodata writes only real folders, give the folder it points to")
    if not path.exists():
        return path
    if not path.is_dir():
        raise OwnershipError(f"{flag} {path}: is a file, not a folder; geodata never replaces it")
    if not any(path.iterdir()):
        return path
    owned = {"dataset": is_dataset, "sample": is_sample, "publish": is_publish_dir}[kind](path)
    if not owned:
        raise OwnershipError(
            f"{flag} {path}: a non-empty folder that geodata did not write ({_WHAT[kind]}); "
            "choose an empty or new folder"
        )
    if kind == "publish":
        extra = foreign_files(path, expect)
        if extra:
            shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
            raise OwnershipError(
                f"{flag} {path}: holds files geodata did not put there ({shown}); they would be "
                "uploaded: move them away or choose another folder"
            )
    return path


def check_out_file(path: Path | str, flag: str = "--out") -> Path:
    """Return ``path`` when geodata may write the file there, else raise OwnershipError.

    Allowed: a path that does not exist, a JSON file geodata wrote (``"written_by": "geodata"``)
    or a Parquet file whose schema metadata carries the same marker (:func:`mark_table`).
    """
    path = Path(path)
    if path.is_dir():
        raise OwnershipError(f"{flag} {path}: is a folder, not a file")
    if not path.exists() and not path.is_symlink():
        return path
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            ours = meta.get(MANIFEST_MARKER[0].encode()) == MANIFEST_MARKER[1].encode()
        else:
            ours = json.loads(path.read_text()).get(MANIFEST_MARKER[0]) == MANIFEST_MARKER[1]
    except Exception:  # noqa: BLE001 - unreadable or not ours: either way, not ours to overwrite
        ours = False
    if not ours or path.is_symlink():
        raise OwnershipError(f"{flag} {path}: exists and geodata did not write it; choose another file")
    return path


def mark_table(table: "pa.Table") -> "pa.Table":  # noqa: F821
    """``table`` with geodata's marker in its schema metadata, so :func:`check_out_file` knows it."""
    meta = dict(table.schema.metadata or {})
    meta[MANIFEST_MARKER[0].encode()] = MANIFEST_MARKER[1].encode()
    return table.replace_schema_metadata(meta)


# -- temporary folders, swaps and clean-up -----------------------------------------------------------


def make_temp(target: Path, tag: str = "tmp") -> Path:
    """A fresh marked sibling ``.NAME.tmp-PID`` of ``target`` (an old marked one is removed)."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{tag}-{os.getpid()}")
    remove_temp(tmp)
    if tmp.exists():
        raise OwnershipError(f"{tmp}: exists and geodata did not write it; move it away")
    tmp.mkdir(parents=True)
    (tmp / TEMP_MARKER).write_text(f"{os.getpid()}\n")
    return tmp


def remove_temp(tmp: Path) -> None:
    """Delete a temporary folder, but only when it carries geodata's temp marker."""
    tmp = Path(tmp)
    if tmp.is_dir() and not tmp.is_symlink() and (tmp / TEMP_MARKER).is_file():
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def clean_stale_temps(target: Path, tag: str = "tmp") -> None:
    """Remove marked temp siblings of ``target`` left by processes that are gone."""
    target = Path(target)
    for p in target.parent.glob(f".{target.name}.{tag}-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        remove_temp(p)


def _our_dirs(files: Iterable[str]) -> set[str]:
    return {p.as_posix() for f in files for p in Path(f).parents if p.as_posix() != "."}


def remove_owned(folder: Path) -> list[str]:
    """Delete the files geodata wrote in a dataset folder and the folders they leave empty.

    Returns what stays (files geodata did not write); the folder itself goes when nothing stays.
    """
    folder = Path(folder)
    ours = dataset_files(folder)
    for rel in sorted(ours):
        f = folder / rel
        if f.is_file() and not f.is_symlink():
            f.unlink()
    (folder / TEMP_MARKER).unlink(missing_ok=True)
    for rel in sorted(_our_dirs(ours), key=lambda r: -len(Path(r).parts)):
        try:
            (folder / rel).rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass
    return _all_files(folder) if folder.exists() else []


def _carry_over(old: Path, new: Path) -> list[str]:
    """Move what geodata did not write (files, empty folders) from ``old`` into ``new``."""
    left: list[str] = []
    moved: set[str] = set()
    ours = dataset_files(old)
    dirs = _our_dirs(ours)
    empty = [Path(d).relative_to(old).as_posix() for d, sub, names in os.walk(old) if not sub and not names]
    for rel in foreign_files(old) + [e for e in empty if e not in dirs and e != "."]:
        src, dst = old / rel, new / rel
        if dst.exists() or dst.is_symlink():
            left.append(rel)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        moved.update(_our_dirs([rel]))
    for rel in sorted(moved, key=lambda r: -len(Path(r).parts)):  # folders emptied by the move
        try:
            (old / rel).rmdir()
        except OSError:
            pass
    return left


def swap_in(tmp: Path, out: Path) -> None:
    """Atomically replace the dataset folder ``out`` by ``tmp``; keep the user's files in ``out``.

    ``out`` must be missing, empty or a geodata dataset (see :func:`check_out`). The old folder
    is renamed aside, the new one renamed in, the files geodata did not write are moved from
    the old folder into the new one, and only then are the old geodata files deleted.
    """
    tmp, out = Path(tmp), Path(out)
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():
        check_out(out, "dataset")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if old.exists():
            raise OwnershipError(f"{old}: exists from an earlier build; geodata did not expect it there")
        os.replace(out, old)
        os.replace(tmp, out)
        (out / TEMP_MARKER).unlink(missing_ok=True)
        _finish_old(old, out)
    else:
        os.replace(tmp, out)
        (out / TEMP_MARKER).unlink(missing_ok=True)


def _finish_old(old: Path, out: Path) -> None:
    left = _carry_over(old, out)
    rest = remove_owned(old)
    if rest:
        import logging

        logging.getLogger("geodata").warning(
            "%s: kept %d files geodata did not write that clash with new ones (%s)", old, len(left), ", ".join(rest[:3])
        )


def restore_interrupted(out: Path) -> None:
    """After a killed build: drop marked temp folders of dead processes, finish a half-done swap."""
    out = Path(out)
    clean_stale_temps(out)
    for old in sorted(out.parent.glob(f".{out.name}.old-*")):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        if not is_dataset(old):
            continue  # not ours: never touched
        if not out.exists():
            os.replace(old, out)
        elif is_dataset(out):
            _finish_old(old, out)


def carry_report(old: Path, new: Path, content_digest: str) -> str | None:
    """Keep the report of the dataset at ``old`` in the new build at ``new`` when it is current.

    Current means its record names ``content_digest``: the new shards are the ones the figures
    were drawn from. Then the recorded files are linked into ``new`` with the record, and the
    old card's ``report`` section is returned for the new card; otherwise nothing is carried
    and None is returned (the old files go with the old folder).
    """
    rec = ReportRecord.read(old)
    if rec is None or rec.content_digest != content_digest:
        return None
    files = [f for f in rec.files if _inside(f) and f.startswith("report/")]
    if not all((Path(old) / f).is_file() for f in files):
        return None
    for f in [*files, REPORT_MARKER]:
        link_or_copy(Path(old) / f, Path(new) / f)
    try:
        section = Dataset.open(old).card.sections.get("report")
    except DatasetError:
        section = None
    if section is None:  # reported without linking: the files stay, the card says nothing
        return None
    return section
