"""The plan of a build: the output folder, the sources' roots and the fingerprint that says
whether the folder is already up to date.

The fingerprint is one sha256 over the resolved spec, the inputs' file stats and the geodata
version; a folder whose manifest holds the same one (and whose embedded image files kept
their size and mtime) is not rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from .._cache import files_digest, stat_digest, stat_files
from ..dataset import Dataset, DatasetError, Manifest, datasets_dir
from ..dataset import ownership as own
from ..dataset.layout import IMAGES_SIDECAR, MANIFEST
from ..errors import BuildError
from ..paths import source_root
from ..registry import SourceInfo, get_format, get_source, get_step
from ..spec import Spec
from .roots import resolve_root

__all__ = ["Plan", "make_plan", "up_to_date", "check_not_downgraded", "incomplete"]

log = logging.getLogger("geodata")

@dataclass(frozen=True)
class Plan:
    """What a build will do, fixed before any row is read."""

    spec: Spec
    #: the dataset folder (checked: missing, empty or geodata's)
    out: Path
    #: source name -> its root folder
    roots: dict[str, Path]
    #: source name (``step:<key>`` for a step that reads files) -> the digest of its input files' stats
    inputs: dict[str, str]
    spec_fingerprint: str
    fingerprint: str
    #: the data-loss limits every step sees in its context
    limits: dict[str, Any]
    #: the sources read from geodata's embedded sample (no root in the spec, no ``$<ENV>``)
    sample_sources: tuple[str, ...] = ()


def make_plan(spec: Spec, out: Path | None = None) -> Plan:
    """Check the output folder (the ownership rule), resolve every root, fingerprint the inputs."""
    get_format(spec.output.format)  # an unknown output format fails before any work
    out = Path(out) if out is not None else datasets_dir() / spec.name
    own.check_out(out, "dataset")
    out.parent.mkdir(parents=True, exist_ok=True)
    own.restore_interrupted(out)
    roots = {n: resolve_root(s, get_source(s.reader)) for n, s in spec.sources.items()}
    inputs = {n: _input_fingerprint(get_source(s.reader), roots[n], s.params) for n, s in spec.sources.items()}
    inputs.update(_step_fingerprints(spec))
    spec_fp = spec.fingerprint()
    limits = {"max_drop_fraction": spec.max_drop_fraction, "min_prediction_coverage": spec.min_prediction_coverage,
              "max_image_pixels": spec.max_image_pixels}
    from_sample = tuple(sorted(n for n, s in spec.sources.items()
                               if not s.root and source_root(get_source(s.reader).env) is None))
    return Plan(spec, out, roots, inputs, spec_fp, _combine(spec_fp, inputs), limits, from_sample)


def check_not_downgraded(plan: Plan) -> None:
    """Refuse to replace a dataset built from the user's own input with one from the embedded sample.

    A plain rerun without the environment variable (a bare ``make eval`` rebuilding
    ``mp16-hard-200k``) would otherwise swap the user's predictions for the simulated ones;
    ``--force`` skips this check.
    """
    if not (plan.out / MANIFEST).exists():
        return
    try:
        old = Dataset.open(plan.out).manifest
    except DatasetError:
        return
    if old.sample_sources is None:  # written before it was recorded
        return
    newly = [n for n in plan.sample_sources if n not in old.sample_sources]
    if not newly:
        return
    name = newly[0]
    env = get_source(plan.spec.sources[name].reader).env
    raise BuildError(
        f"{plan.out}: built from your own '{name}' input, and {env} is not set now: this build would replace it "
        f"with one from the embedded sample. Set {env} again (or --set sources.{name}.root=PATH), build into "
        f"another folder with --out, or pass --force to replace it"
    )


def incomplete(manifest: Manifest) -> list[tuple[str, Any]]:
    """Notes ``<step>.incomplete`` of a build (e.g. model requests that failed, see
    :mod:`geodata.steps.predict`): such a build is never up to date, the next one retries."""
    return [(k, v) for k, v in sorted(manifest.stats.notes.items()) if k.endswith(".incomplete") and v]


def up_to_date(plan: Plan) -> Manifest | None:
    """The manifest of the folder when it was built from this very plan and its images are unchanged."""
    if not (plan.out / MANIFEST).exists():
        return None
    try:
        old = Dataset.open(plan.out).manifest
    except DatasetError:  # unreadable or not ours: rebuild (the ownership rule guards the folder)
        return None
    for key, why in incomplete(old):  # e.g. model requests that failed: this build sends them again
        log.warning("%s: the last build is incomplete (%s: %s): rebuilding", plan.spec.name, key, why)
        return None
    if old.fingerprint == plan.fingerprint and _images_unchanged(plan.out, old.images_digest):
        return old
    return None


def _input_fingerprint(info: SourceInfo, root: Path, params: dict[str, Any]) -> str:
    if info.fingerprint is not None:
        files = info.fingerprint(root, **params)
    else:
        files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    return stat_digest([root, *files]) if files else stat_digest([root])


def _step_fingerprints(spec: Spec) -> dict[str, str]:
    """``step:<key>`` -> the digest of the files a step reads besides the sources (none: no entry)."""
    out = {}
    for st in spec.steps:
        info = get_step(st.step)
        files = info.fingerprint(**st.params) if info.fingerprint is not None else []
        if files:
            out[f"step:{st.key}"] = stat_digest(files)
    return out


def _images_unchanged(out: Path, want: str | None) -> bool:
    """True when every image file the last build embedded has the size and mtime it had then (``want``)."""
    if want is None:
        return True
    try:
        files = pl.read_ipc(out / IMAGES_SIDECAR, columns=["file"])["file"].to_list()
    except (OSError, pl.exceptions.PolarsError):  # no or unreadable sidecar: rebuild
        return False
    return files_digest(stat_files(files)) == want


def _combine(spec_fp: str, inputs: dict[str, str]) -> str:
    h = hashlib.sha256(spec_fp.encode())
    for k in sorted(inputs):
        h.update(f"{k}={inputs[k]}".encode())
    h.update(__version__.encode())
    return h.hexdigest()
