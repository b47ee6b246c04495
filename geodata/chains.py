"""Reproduce chains: a paper's stages, from data to the published table, as one resumable run.

A chain is data: ``pipelines/chains/<name>.yaml`` lists its ``stages`` in order, each a
command line (``run``, with ``{placeholders}``), the stages whose outputs it reads (``after``)
and what it must leave in its folder (``outputs``); ``profiles`` give the placeholder values
(``tiny``: the tiny random model on the embedded samples, on a CPU; ``paper``: the paper's
settings). Every stage writes under ``runs/<chain>/<stage>/`` and, when its command succeeds,
a stamp file (:data:`STAMP`) holding the stage's fingerprint: its rendered command, the values
of the chain's ``watch_env`` variables, and the fingerprint and files (size, and content up to
1 MiB, else mtime) of every stage it reads. A stage whose stamp matches and whose outputs exist is skipped ("current"); a
stage that was killed has no stamp and runs again (builds are atomic; a training stage gets
its ``resume`` argument when a checkpoint is there). Each command is printed before it runs,
so any stage can be run by hand.

    python -m geodata.chains geo-r --profile tiny            # the whole chain
    python -m geodata.chains geo-r --profile paper --list    # the stages and their commands
    python -m geodata.chains geo-r --stage sft               # up to and including one stage
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import GeodataError, SpecError
from .paths import chain_dirs
from .spec import read_mapping, validate_model

__all__ = ["Chain", "Stage", "load_chain", "chain_dirs", "plan", "run_chain", "STAMP", "main"]

#: written into a stage's folder when its command succeeded (the fingerprint it ran with)
STAMP = ".geodata-stage.json"


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    what: str = ""
    run: str
    env: dict[str, str] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list, description="stages whose outputs this one reads")
    outputs: list[str] = Field(default_factory=list, description="paths under the stage folder it must leave")
    only: list[str] | None = Field(None, description="profiles this stage belongs to (default: all)")
    resume: str | None = Field(None, description="argument appended when a checkpoint-* is in the stage folder")


class Chain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    paper: str
    description: str = ""
    watch_env: list[str] = Field(default_factory=list)
    profiles: dict[str, dict[str, Any]]
    stages: list[Stage]
    path: Path | None = Field(None, exclude=True)


def load_chain(name_or_path: str | Path) -> Chain:
    """Read and check a chain: unique stage ids, ``after`` naming earlier stages, placeholders defined."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        cands = [d / f"{name_or_path}.yaml" for d in chain_dirs()]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            known = sorted({f.stem for d in chain_dirs() if d.is_dir() for f in d.glob("*.yaml")})
            raise SpecError(f"unknown chain '{name_or_path}' (known: {', '.join(known) or 'none'})")
        p = found
    chain = validate_model(Chain, read_mapping(p, "chain must be a mapping with name, profiles and stages"), str(p))
    chain.path = p
    seen: set[str] = set()
    for st in chain.stages:
        if st.id in seen:
            raise SpecError(f"{p}: stage '{st.id}' appears twice")
        bad = [a for a in st.after if a not in seen]
        if bad:
            raise SpecError(f"{p}: stage '{st.id}': after {bad}: not an earlier stage ({', '.join(seen) or 'none'})")
        seen.add(st.id)
        for prof in st.only or []:
            if prof not in chain.profiles:
                raise SpecError(f"{p}: stage '{st.id}': only: unknown profile '{prof}' (profiles: {', '.join(chain.profiles)})")
    return chain


@dataclass
class Step:
    """A stage of one profile, rendered: its folder, argv, printable command and env."""

    stage: Stage
    folder: Path
    argv: list[str]
    command: str
    env: dict[str, str] = field(default_factory=dict)


def _render_value(v: Any) -> str:
    if isinstance(v, list):  # a list of overrides: --set a=1 --set b=2
        return " ".join(f"--set {shlex.quote(str(x))}" for x in v)
    return "null" if v is None else str(v)


def _render(text: str, values: dict[str, Any], where: str) -> str:
    try:
        return text.format(**{k: _render_value(v) for k, v in values.items()})
    except KeyError as exc:
        raise SpecError(f"{where}: placeholder {{{exc.args[0]}}} is not defined (give it in the profile)") from None


def plan(chain: Chain, profile: str, runs: Path | None = None) -> list[Step]:
    """The stages of ``profile`` with their commands rendered (``{runs}``: ``runs/<chain>``)."""
    if profile not in chain.profiles:
        raise SpecError(f"chain {chain.name}: unknown profile '{profile}' (profiles: {', '.join(chain.profiles)})")
    root = Path(runs) if runs is not None else Path("runs") / chain.name
    values: dict[str, Any] = {"runs": root.as_posix(), "chain": chain.name, "profile": profile}
    prof = chain.profiles[profile]
    values.update({k: (_render(v, values, f"{chain.name}.profiles.{profile}.{k}") if isinstance(v, str) else v)
                   for k, v in prof.items()})
    steps = []
    for st in chain.stages:
        if st.only is not None and profile not in st.only:
            continue
        vals = {**values, "out": (root / st.id).as_posix()}
        where = f"{chain.name}: stage {st.id}"
        cmd = " ".join(_render(st.run, vals, where).split())
        env = {k: _render(v, vals, where) for k, v in st.env.items()}
        shown = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), cmd])
        steps.append(Step(st, root / st.id, shlex.split(cmd), shown, env))
    return steps


#: files up to this size are compared by content (a trainer may rewrite a tokenizer file unchanged)
SMALL_FILE = 1 << 20


def _files_digest(folder: Path) -> list[tuple[str, int, int | str]]:
    """(path, size, content sha256 for small files | mtime for large ones) of every file but the stamp."""
    out: list[tuple[str, int, int | str]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for f in sorted(filenames):
            if f == STAMP:
                continue
            p = Path(dirpath) / f
            try:
                s = p.stat()
            except OSError:
                continue
            key: int | str = s.st_mtime_ns
            if s.st_size <= SMALL_FILE:
                try:
                    key = hashlib.sha256(p.read_bytes()).hexdigest()
                except OSError:
                    continue
            out.append((p.relative_to(folder).as_posix(), s.st_size, key))
    return out


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _own_stamp(folder: Path) -> None:
    """A stamp file geodata did not write (no ``written_by: geodata``) is the user's: refuse to touch it."""
    p = folder / STAMP
    if p.exists() and (_read_stamp(folder) or {}).get("written_by") != "geodata":
        raise GeodataError(f"{p} is not a stamp geodata wrote; move it away (geodata never overwrites a user's file)")


def fingerprint(step: Step, chain: Chain, done: dict[str, Step]) -> str:
    """sha256 of the command, the watched env values and each upstream stage's stamp and files."""
    h = {"command": step.command,
         "env": {k: os.environ.get(k, "") for k in chain.watch_env}}
    ups = {}
    for a in step.stage.after:
        up = done.get(a)
        if up is None:
            continue  # a stage of another profile
        stamp = _read_stamp(up.folder) or {}
        ups[a] = {"fingerprint": stamp.get("fingerprint"), "files": _files_digest(up.folder)}
    h["after"] = ups
    return hashlib.sha256(json.dumps(h, sort_keys=True).encode()).hexdigest()


def _geodata_argv(argv: list[str]) -> list[str]:
    """``geodata ...`` runs this interpreter's geodata (its console script, else the module)."""
    if argv and argv[0] == "geodata":
        exe = shutil.which("geodata", path=str(Path(sys.executable).parent))
        head = [exe] if exe else [sys.executable, "-c", "from geodata.cli import main; main()"]
        return head + argv[1:]
    return argv


def run_chain(
    name: str | Path, profile: str = "tiny", *, runs: Path | None = None, stage: str | None = None,
    dry_run: bool = False, echo: Any = print,
) -> list[tuple[str, str]]:
    """Run (or with ``dry_run`` only print) the chain's stages in order; return ``(stage, status)``.

    ``stage`` stops after that stage. A failing command raises :class:`GeodataError` naming the
    stage and the command to run it by hand; the stages before it keep their stamps.
    """
    chain = load_chain(name)
    steps = plan(chain, profile, runs)
    ids = [s.stage.id for s in steps]
    if stage is not None and stage not in ids:
        raise SpecError(f"chain {chain.name} ({profile}): no stage '{stage}' (stages: {', '.join(ids)})")
    done: dict[str, Step] = {}
    report = []
    for i, step in enumerate(steps, 1):
        fp = fingerprint(step, chain, done)
        stamp = _read_stamp(step.folder)
        outputs_ok = all((step.folder / o).exists() for o in step.stage.outputs)
        head = f"[{chain.name} {i}/{len(steps)}] {step.stage.id}"
        if stamp and stamp.get("fingerprint") == fp and outputs_ok:
            echo(f"{head}: current, skipped  ({step.command})")
            report.append((step.stage.id, "current"))
        elif dry_run:
            echo(f"{head}: would run\n  $ {step.command}")
            report.append((step.stage.id, "would run"))
        else:
            argv = list(step.argv)
            if step.stage.resume and any(step.folder.rglob("checkpoint-*")):
                argv.append(step.stage.resume)
            echo(f"{head}: {step.stage.what}\n  $ {step.command}{' ' + step.stage.resume if argv != step.argv else ''}")
            step.folder.mkdir(parents=True, exist_ok=True)
            _own_stamp(step.folder)
            (step.folder / STAMP).unlink(missing_ok=True)  # ours (checked): a stage that fails is not current
            t0 = time.perf_counter()
            rc = subprocess.run(_geodata_argv(argv), env={**os.environ, **step.env}).returncode
            if rc != 0:
                raise GeodataError(f"chain {chain.name}: stage '{step.stage.id}' failed (exit {rc}); "
                                   f"fix it and rerun the chain (finished stages are skipped), or run it by hand: {step.command}")
            missing = [o for o in step.stage.outputs if not (step.folder / o).exists()]
            if missing:
                raise GeodataError(f"chain {chain.name}: stage '{step.stage.id}' left no {', '.join(missing)} under {step.folder}")
            # after the run: a stage may rewrite what it read (GRPO re-saves the SFT model's processor)
            fp = fingerprint(step, chain, done)
            (step.folder / STAMP).write_text(json.dumps(
                {"written_by": "geodata", "chain": chain.name, "stage": step.stage.id, "profile": profile,
                 "fingerprint": fp, "command": step.command}, indent=1) + "\n")
            echo(f"{head}: done in {time.perf_counter() - t0:.1f} s")
            report.append((step.stage.id, "ran"))
        done[step.stage.id] = step
        if step.stage.id == stage:
            break
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m geodata.chains", description=__doc__.split("\n\n")[0])
    ap.add_argument("chain", help="geo-r | geo-r1 | geovlm-r1 (pipelines/chains/NAME.yaml) or a YAML path")
    ap.add_argument("--profile", default=os.environ.get("PROFILE") or "tiny", help="tiny (CPU, samples) | paper")
    ap.add_argument("--runs", type=Path, default=None, help="the chain's folder (default runs/<chain>)")
    ap.add_argument("--stage", default=None, help="stop after this stage (earlier current stages are skipped)")
    ap.add_argument("--list", action="store_true", help="print the stages and their commands, run nothing")
    args = ap.parse_args(argv)
    try:
        if args.list:
            chain = load_chain(args.chain)
            print(f"{chain.name} ({args.profile}): {chain.paper}")
            for i, s in enumerate(plan(chain, args.profile, args.runs), 1):
                print(f"{i:>2}. {s.stage.id}: {s.stage.what}\n    $ {s.command}")
            return 0
        run_chain(args.chain, args.profile, runs=args.runs, stage=args.stage)
    except GeodataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
