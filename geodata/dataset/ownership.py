"""The one rule for touching folders: geodata deletes or replaces only what it wrote.

What geodata wrote is recognised by its own marker, never by a folder's name:

* a **dataset** folder holds ``manifest.json`` with ``"written_by": "geodata"`` (manifests of
  older geodata versions, which carry ``geodata_version`` and ``fingerprint``, count too); the
  files geodata wrote there are the ones the manifest lists plus ``manifest.json``,
  ``README.md``, ``build_stats.json`` and :data:`IMAGES_SIDECAR`;
* a **sample** folder holds ``.complete`` starting with :data:`SAMPLE_TEXT` and listing the files
  geodata wrote there (:func:`replace_sample` updates such a folder and keeps every other file);
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

from .._cache import file_sha256 as _sha256
from ..errors import OwnershipError
from .folder import Dataset, DatasetError, ReportRecord
from .layout import (FIXED_FILES, IMAGES_SIDECAR, MANIFEST_MARKER, PUBLISH_MARKER, REPORT_MARKER, SAMPLE_MARKER,
                     SAMPLE_PARTIAL, SAMPLE_TEXT, TEMP_MARKER)

__all__ = [
    "MANIFEST_MARKER", "IMAGES_SIDECAR", "SAMPLE_MARKER", "SAMPLE_TEXT", "PUBLISH_MARKER", "TEMP_MARKER",
    "check_out", "check_out_file", "claim_folder", "is_marked_file", "mark_table", "is_dataset", "is_sample", "is_publish_dir", "dataset_files", "foreign_files",
    "make_temp", "remove_temp", "clean_stale_temps", "swap_in", "remove_owned", "restore_interrupted",
    "mark_sample", "remove_sample", "clean_built", "refuse_clashes", "install_files", "read_listing", "write_listing",
    "is_sample_folder", "sample_files", "replace_sample", "mark_report", "report_files", "report_files_unchanged",
    "REPORT_MARKER", "link_or_copy", "carry_report",
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


def _sample_marker(folder: Path) -> tuple[str, set[str] | None] | None:
    """``(state, files)`` of a sample marker: state ``complete`` or ``partial``; files None for a
    marker of an older geodata (the text alone), else the relative paths geodata wrote."""
    try:
        text = (Path(folder) / SAMPLE_MARKER).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    for state, head in (("complete", SAMPLE_TEXT), ("partial", SAMPLE_PARTIAL)):
        if text == head:
            return state, None
        if text.startswith(head):
            try:
                files = json.loads(text[len(head):])["files"]
            except (ValueError, KeyError, TypeError):
                return None
            return state, {f for f in files if isinstance(f, str) and _inside(f)}
    return None


def is_sample(folder: Path) -> bool:
    """True when ``folder`` holds a complete sample geodata wrote (its ``.complete`` marker)."""
    m = _sample_marker(folder)
    return m is not None and m[0] == "complete"


def is_sample_folder(folder: Path) -> bool:
    """True when ``folder`` is geodata's sample folder, complete or interrupted while replaced."""
    return _sample_marker(folder) is not None


def sample_files(folder: Path) -> set[str] | None:
    """The files geodata wrote in a sample folder (None for an older marker without the list)."""
    m = _sample_marker(folder)
    return None if m is None else m[1]


def mark_sample(folder: Path, files: Iterable[str] | None = None, partial: bool = False) -> None:
    """Write the sample marker into ``folder``, listing ``files`` (default: every file there)."""
    folder = Path(folder)
    listed = sorted(set(_all_files(folder) if files is None else files) - {SAMPLE_MARKER, TEMP_MARKER})
    text = (SAMPLE_PARTIAL if partial else SAMPLE_TEXT) + json.dumps({"files": listed}) + "\n"
    tmp = folder / f"{SAMPLE_MARKER}.tmp-{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, folder / SAMPLE_MARKER)


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
    if dst.exists() or dst.is_symlink():  # the link itself, never what it points to
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def mark_report(folder: Path, files: Iterable[str], content_digest: str | None = None) -> None:
    """Record the files ``geodata report`` wrote in a dataset folder (relative paths, in order)
    and the content digest of the shards they show (see :class:`geodata.dataset.ReportRecord`)."""
    files = list(dict.fromkeys(files))
    body = {MANIFEST_MARKER[0]: MANIFEST_MARKER[1], "files": files, "content_digest": content_digest,
            "sha256": {f: _sha256(Path(folder) / f) for f in files if (Path(folder) / f).is_file()}}
    (Path(folder) / REPORT_MARKER).write_text(json.dumps(body, indent=1) + "\n")


def report_files_unchanged(folder: Path) -> set[str]:
    """The files ``geodata report`` recorded that still hold the bytes it wrote (a recorded file
    you edited since is yours: a new report does not replace it)."""
    rec = ReportRecord.read(Path(folder))
    sums = (rec.model_extra or {}).get("sha256") if rec is not None else None
    files = report_files(folder)
    if not isinstance(sums, dict):
        return files
    return {f for f in files if f not in sums or ((Path(folder) / f).is_file() and _sha256(Path(folder) / f) == sums[f])}


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
    owned = {"dataset": is_dataset, "sample": is_sample_folder, "publish": is_publish_dir}[kind](path)
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


def claim_folder(path: Path | str, marker: str, flag: str) -> Path:
    """Make ``path`` a folder geodata writes into over time (a training run), marked by ``marker``.

    Allowed: a missing or empty folder (created, and ``marker`` written first of all, so every
    rank of a distributed run agrees) or one that already holds ``marker``. Anything else is a
    one-line OwnershipError naming ``flag`` and the path, before any work.
    """
    path = Path(path)
    why = _protected(path)
    if why is not None:
        raise OwnershipError(f"{flag} {path}: is {why}; choose a new folder")
    if path.exists() and not path.is_dir():
        raise OwnershipError(f"{flag} {path}: is a file, not a folder; geodata never replaces it")
    if path.is_dir() and not (path / marker).is_file() and any(path.iterdir()):
        raise OwnershipError(
            f"{flag} {path}: a non-empty folder that geodata did not write (no {marker}); choose a new or empty folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path / marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({MANIFEST_MARKER[0]: MANIFEST_MARKER[1]}) + "\n")
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
    if not is_marked_file(path):
        raise OwnershipError(f"{flag} {path}: exists and geodata did not write it; choose another file")
    return path


def is_marked_file(path: Path | str) -> bool:
    """True for a file geodata wrote: JSON with ``"written_by": "geodata"``, or Parquet whose
    schema metadata carries that marker (:func:`mark_table`). Never a link."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            return meta.get(MANIFEST_MARKER[0].encode()) == MANIFEST_MARKER[1].encode()
        body = json.loads(path.read_text())
        return isinstance(body, dict) and body.get(MANIFEST_MARKER[0]) == MANIFEST_MARKER[1]
    except Exception:  # noqa: BLE001 - unreadable or not ours: either way, not ours to overwrite
        return False


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
    if not (tmp.is_dir() and not tmp.is_symlink() and (tmp / TEMP_MARKER).is_file()):
        return
    try:
        for d, dirs, names in os.walk(tmp, topdown=False):  # the marker goes last: a kill midway
            for n in names:  # leaves a folder still marked, which the next clean-up removes
                if not (d == str(tmp) and n == TEMP_MARKER):
                    os.unlink(os.path.join(d, n))
            for n in dirs:
                p = os.path.join(d, n)
                os.unlink(p) if os.path.islink(p) else os.rmdir(p)
            if d == str(tmp):
                _step("temp emptied")
        os.unlink(tmp / TEMP_MARKER)
        os.rmdir(tmp)
    except OSError:  # still marked: the next command's clean-up tries again
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _wholly_ours(folder: Path) -> bool:
    """True for a folder geodata finished but never moved into place (its temp marker gone):
    a geodata dataset or sample holding nothing geodata did not write."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    if is_dataset(folder):
        return not foreign_files(folder)
    listed = sample_files(folder)
    return listed is not None and set(_all_files(folder)) - {SAMPLE_MARKER} <= listed


def clean_stale_temps(target: Path, tag: str = "tmp") -> None:
    """Remove marked temp siblings of ``target`` left by processes that are gone (and finished
    ones whose marker was already removed, when they hold only geodata's files)."""
    target = Path(target)
    for p in target.parent.glob(f".{target.name}.{tag}-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        if (p / TEMP_MARKER).is_file() or _wholly_ours(p):
            (p / TEMP_MARKER).touch()
            remove_temp(p)


def _our_dirs(files: Iterable[str]) -> set[str]:
    return {p.as_posix() for f in files for p in Path(f).parents if p.as_posix() != "."}


def remove_owned(folder: Path) -> list[str]:
    """Delete the files geodata wrote in a dataset folder and the folders they leave empty.

    Returns what stays (files geodata did not write); the folder itself goes when nothing stays.
    """
    folder = Path(folder)
    # the manifest last: until then the folder stays recognisably geodata's, so a killed
    # clean-up is finished later
    return _remove_listed(folder, dataset_files(folder), TEMP_MARKER, last="manifest.json")


def _remove_listed(folder: Path, listed: Iterable[str], marker: str, last: str = "") -> list[str]:
    """Unlink the listed files (``last`` after the others), then ``marker``, then the folders
    they leave empty and ``folder`` itself if empty; return what stays (the user's files)."""
    listed = set(listed)
    for rel in sorted(listed, key=lambda r: (r == last, r)):
        f = folder / rel
        if f.is_file() and not f.is_symlink():
            f.unlink()
            _step(f"unlinked {rel}")
    (folder / marker).unlink(missing_ok=True)
    for rel in sorted(_our_dirs(listed), key=lambda r: -len(Path(r).parts)):
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
        if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
            src.rmdir()  # an empty folder already there (its files moved before a kill): nothing to move
            continue
        if dst.exists() or dst.is_symlink():
            left.append(rel)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        _step(f"moved {rel}")
        moved.update(_our_dirs([rel]))
    for rel in sorted(moved, key=lambda r: -len(Path(r).parts)):  # folders emptied by the move
        try:
            (old / rel).rmdir()
        except OSError:
            pass
    for d, sub, names in os.walk(old, topdown=False):  # emptied before a kill: their twins are in new
        rel = Path(d).relative_to(old)
        if rel != Path(".") and (new / rel).is_dir() and not (new / rel).is_symlink():
            try:
                Path(d).rmdir()
            except OSError:
                pass
    return left


def _step(what: str) -> None:
    """A point between two file operations of a swap (tests inject a crash or a kill here)."""


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic step (``renameat2(RENAME_EXCHANGE)`` on Linux,
    ``renamex_np(RENAME_SWAP)`` on macOS); False where the OS or the filesystem cannot."""
    import ctypes
    import errno
    import sys

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    fa, fb = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux"):
        fn = getattr(libc, "renameat2", None)
        if fn is not None:
            r = fn(-100, fa, -100, fb, 2)  # AT_FDCWD, RENAME_EXCHANGE
        else:  # glibc < 2.28: the raw system call
            import platform

            nr = {"x86_64": 316, "aarch64": 276}.get(platform.machine())
            if nr is None:
                return False
            r = libc.syscall(nr, -100, fa, -100, fb, 2)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        r = libc.renamex_np(fa, fb, 2)  # RENAME_SWAP
    else:
        return False
    if r == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a))


def swap_in(tmp: Path, out: Path) -> None:
    """Replace the dataset folder ``out`` by the finished dataset in ``tmp``; keep the user's files.

    ``out`` must be missing, empty or a geodata dataset (see :func:`check_out`). The temp marker
    leaves ``tmp`` first, then the two folders are exchanged in one atomic step
    (:func:`_exchange`), so ``out`` always holds the old or the new dataset; the files geodata
    did not write are then moved from the old folder (now at ``tmp``'s name) into the new one and
    only then are the old geodata files deleted. Where the OS cannot exchange, the old folder is
    renamed aside (``.NAME.old-PID``) and the new one renamed in: ``out`` is missing between
    those two renames only. A kill at any point is finished by :func:`restore_interrupted`.
    """
    tmp, out = Path(tmp), Path(out)
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        out.rmdir()
        _step("empty out removed")
    if out.exists():
        check_out(out, "dataset")
        (out / TEMP_MARKER).unlink(missing_ok=True)  # a stray marker of an older geodata
        (tmp / TEMP_MARKER).unlink(missing_ok=True)
        _step("marker removed")
        if _exchange(tmp, out):
            old = tmp
        else:
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            if old.exists():
                raise OwnershipError(f"{old}: exists from an earlier build; geodata did not expect it there")
            os.replace(out, old)
            _step("old renamed aside")
            os.replace(tmp, out)
        _step("new in place")
        _finish_old(old, out)
    else:
        (tmp / TEMP_MARKER).unlink(missing_ok=True)
        _step("marker removed")
        os.replace(tmp, out)


def _finish_old(old: Path, out: Path) -> None:
    """Move the user's files from the swapped-out ``old`` into ``out``, then delete ``old``'s own."""
    left = _carry_over(old, out)
    if not left and not foreign_files(old):  # geodata's files only: marked, so a kill midway is
        (old / TEMP_MARKER).write_text("")  # finished by clean_stale_temps, never left half-deleted
        _step("old marked")
        remove_temp(old)
        return
    rest = remove_owned(old)
    if rest:
        import logging

        logging.getLogger("geodata").warning(
            "%s: kept %d files geodata did not write that clash with new ones (%s)", old, len(left), ", ".join(rest[:3])
        )


def refuse_clashes(folder: Path, writes: Iterable[str], ours: Iterable[str], what: str, fix: str = "") -> None:
    """Raise OwnershipError when a path of ``writes`` (relative to ``folder``) holds something
    geodata did not write: a file or link not in ``ours``, a folder, or a parent that is a file or
    a link (a listed link is replaced itself, never written through). Checked before anything
    is written, so a refusal changes nothing.
    """
    folder = Path(folder)
    writes, ours = sorted(set(writes)), set(ours)
    clash = [f for f in writes if ((folder / f).is_dir() and not (folder / f).is_symlink())
             or (f not in ours and ((folder / f).exists() or (folder / f).is_symlink()))]
    clash += [d for d in sorted(_our_dirs(writes))
              if (folder / d).is_symlink() or ((folder / d).exists() and not (folder / d).is_dir())]
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        clash.insert(0, ".")
    if clash:
        shown = ", ".join(clash[:3]) + (f" and {len(clash) - 3} more" if len(clash) > 3 else "")
        raise OwnershipError(
            f"{folder}: {what} would replace files geodata did not write ({shown}); "
            f"move them away{' or ' + fix if fix else ''}"
        )


def replace_sample(tmp: Path, root: Path) -> None:
    """Put the sample written in the marked temp folder ``tmp`` at ``root``.

    A missing or empty ``root`` becomes ``tmp`` in one rename. A sample folder of geodata's is
    updated in place: each new file replaces geodata's file of the same path (one rename each),
    geodata's files the new sample lacks are deleted, and every other file and folder (the
    user's: notes, a dataset built inside) stays where it is, untouched. A file of the user's at
    a path the sample writes is an :class:`OwnershipError` before anything changes. Meanwhile the
    marker says ``partial`` and lists the old and new files, so the next run finishes the job.
    An older marker without the list counts as geodata's only the files that hold exactly the
    new sample's bytes.
    """
    tmp, root = Path(tmp), Path(root)
    new = sorted(set(_all_files(tmp)) - {SAMPLE_MARKER, TEMP_MARKER})
    if root.is_dir() and not root.is_symlink() and not any(root.iterdir()):
        root.rmdir()
    if not root.exists() and not root.is_symlink():
        mark_sample(tmp, new)
        (tmp / TEMP_MARKER).unlink(missing_ok=True)
        os.replace(tmp, root)
        return
    check_out(root, "sample")
    for stray in root.glob(f"{SAMPLE_MARKER}.tmp-*"):  # a marker write cut short: ours by its text
        if _sample_marker_text(stray):
            stray.unlink()
    listed = sample_files(root)
    old = listed if listed is not None else {f for f in new if _same_bytes(root / f, tmp / f)}
    install_files(tmp, root, old, lambda files, partial: mark_sample(root, files, partial), "the sample",
                  "choose another --out")


def install_files(tmp: Path, root: Path, old: Iterable[str], mark, what: str, fix: str = "") -> list[str]:
    """Move every file of the marked temp folder ``tmp`` to the same path in ``root``.

    ``old`` are the files geodata wrote in ``root`` before (its marker's list); ``mark(files,
    partial)`` writes the marker listing ``files``. A path holding something else (see
    :func:`refuse_clashes`) is an OwnershipError before anything changes; then the marker
    lists old and new files (``partial``), the files move (one rename each), the old files the
    new set lacks go, and the marker lists the new files. Everything else in ``root`` stays.
    Returns the new files.
    """
    tmp, root, old = Path(tmp), Path(root), set(old)
    new = sorted(set(_all_files(tmp)) - {TEMP_MARKER})
    refuse_clashes(root, new, old, what, fix)
    root.mkdir(parents=True, exist_ok=True)
    mark(old | set(new), True)
    for f in new:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / f, root / f)
        _step(f"installed {f}")
    gone = old - set(new)
    for f in sorted(gone):
        if (root / f).is_file() and not (root / f).is_symlink():
            (root / f).unlink()
    for d in sorted(_our_dirs(gone) - _our_dirs(new), key=lambda r: -len(Path(r).parts)):
        try:
            (root / d).rmdir()
        except OSError:
            pass  # holds the user's files: stays
    mark(set(new), False)
    remove_temp(tmp)
    return new


def read_listing(folder: Path, marker: str) -> tuple[bool, set[str] | None]:
    """``(marked, files)`` of a folder geodata marks with the JSON file ``marker``: ``marked`` when
    the marker is there, ``files`` the paths it lists (None for an older marker without a list)."""
    path = Path(folder) / marker
    if not path.is_file() or path.is_symlink():
        return False, None
    try:
        body = json.loads(path.read_text())
        files = body["files"] if isinstance(body, dict) else None
    except (OSError, ValueError, KeyError, UnicodeDecodeError):
        return True, None
    if not isinstance(files, list):
        return True, None
    return True, {f for f in files if isinstance(f, str) and _inside(f)} - {marker}


def write_listing(folder: Path, marker: str, files: Iterable[str], partial: bool = False, **info: object) -> None:
    """Write ``marker`` (JSON) into ``folder``: geodata's mark, ``info`` and the files it wrote there."""
    body = {MANIFEST_MARKER[0]: MANIFEST_MARKER[1], **info, "state": "partial" if partial else "complete",
            "files": sorted(set(files) - {marker})}
    tmp = Path(folder) / f"{marker}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, Path(folder) / marker)


def _sample_marker_text(path: Path) -> bool:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    return text.startswith(SAMPLE_TEXT) or text.startswith(SAMPLE_PARTIAL)


def remove_sample(folder: Path) -> list[str]:
    """Delete the files a sample marker lists, the marker, and the folders left empty; return
    what stays (the user's files; everything under an older marker that lists nothing)."""
    folder = Path(folder)
    listed = sample_files(folder)
    if listed is None or folder.is_symlink():
        return _all_files(folder)
    return _remove_listed(folder, listed, SAMPLE_MARKER)


def clean_built(*parents: Path | str) -> list[str]:
    """``make clean``: in each of ``parents`` (``datasets``, ``data/samples``) delete what geodata
    wrote (datasets, samples, its marked temp folders) and keep everything else; return the paths
    kept, and remove a parent left empty."""
    kept: list[str] = []
    for parent in map(Path, parents):
        if not parent.is_dir() or parent.is_symlink():
            continue
        for d in sorted(parent.iterdir()):
            if d.is_symlink() or not d.is_dir():
                kept.append(str(d))
            elif (d / TEMP_MARKER).is_file():
                remove_temp(d)
            elif is_dataset(d):
                kept += [str(d / r) for r in remove_owned(d)]
            elif is_sample_folder(d):
                kept += [str(d / r) for r in remove_sample(d)]
            else:
                kept.append(str(d))
        try:
            parent.rmdir()
        except OSError:
            pass
    return kept


def restore_interrupted(out: Path) -> None:
    """After a killed build or swap: put a finished dataset back at ``out`` when it is missing,
    finish a half-done swap (the user's files move into ``out``, the old geodata files go),
    drop marked temp folders of dead processes and a stray temp marker inside ``out``."""
    out = Path(out)
    beside = []
    for tag in ("tmp", "old"):  # a finished new folder first, then an old one
        for p in sorted(out.parent.glob(f".{out.name}.{tag}-*")):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            if p.is_dir() and not p.is_symlink() and not (p / TEMP_MARKER).exists() and is_dataset(p):
                beside.append(p)
    for p in beside:
        if not out.exists() and not out.is_symlink():
            os.replace(p, out)
        elif is_dataset(out):
            _finish_old(p, out)
    clean_stale_temps(out)
    clean_stale_temps(out, "old")
    if is_dataset(out) and not out.is_symlink():
        (out / TEMP_MARKER).unlink(missing_ok=True)


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
