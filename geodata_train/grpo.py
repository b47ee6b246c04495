"""GRPO: TRL ``GRPOTrainer`` with the ``geodata`` rewards picked per row by its ``task``.

Every ``trl.GRPOConfig`` field can be set in the recipe's ``grpo`` section. A ``data.config``
list trains stage by stage (GeoVLM-R1's task-by-task GRPO): **each stage is its own process**
(``python -m geodata_train grpo RECIPE --set data.config=<stage> ...``) that starts from the
previous stage's output, writes ``<output_dir>/<config>`` and, when done, the marker
:data:`STAGE_MARKER` there; a rerun skips finished stages and resumes an unfinished one from
its last checkpoint. The KL reference of stage 2.. is ``grpo.reference``: ``previous`` (the
stage's starting weights, TRL's default) or ``base`` (the recipe's model). The last stage's
files are linked into ``<output_dir>``.

vLLM (``grpo.use_vllm``) is started by TRL as ``LLM(model=model.name_or_path)``, with no image
size settings, and re-processes the raw images at the size that folder's processor config
says. So the policy's ``name_or_path`` is pointed at :func:`policy_folder`: the starting
model's files linked, plus the trainer's processor (the recipe's ``model.min_pixels`` /
``max_pixels``) saved, so that vLLM, the trainer and the saved checkpoint use one image size
(the failure of huggingface/trl#5361 and StarsfieldAI/R1-V#73).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from geodata.errors import BuildError, SpecError

from .recipe import Recipe, load_recipe

__all__ = ["STAGE_MARKER", "prepare", "run", "grpo_config", "policy_folder", "run_stages"]

log = logging.getLogger("geodata.training")

#: written into a stage's output folder when the stage finished
STAGE_MARKER = ".geodata-stage-done.json"
#: written into every folder geodata links a model into (policy_folder)
LINK_MARKER = ".geodata-linked.json"
#: the files of a model folder that describe its processor (replaced in the policy folder)
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")

GRPO_COLUMNS = ["images", "prompt", "task", "solution"]


def prepare(recipe: Recipe) -> list[tuple[str | None, Any, list[Any]]]:
    """Validate ``recipe`` for GRPO and load its rows; no model is loaded.

    Returns
    -------
    list of (config, rows, reward functions)
        One entry per stage (``data.config`` value), in training order.

    Raises
    ------
    SourceError
        A dataset lacks ``images``, ``prompt``, ``task`` or ``solution``.
    SpecError
        A task has no reward, or a reward parameter is unknown.
    """
    from .data import load_rows, task_rewards, unique_tasks
    from .rewards import trl_reward_funcs

    g = recipe.require("grpo")
    if g.use_vllm and importlib.util.find_spec("vllm") is None:
        raise SpecError(
            f"{recipe.where}: grpo.use_vllm is set but vllm is not installed (pip install -e '.[train,vllm]')"
        )
    import datasets

    stages = []
    for config in recipe.data.configs:
        rows = load_rows(recipe.data, "grpo", config, recipe.where)
        rows = rows.select_columns(GRPO_COLUMNS)
        stages.append((config, rows))
    if not g.stages and len(stages) > 1:  # one run over every config (Geo-R1: all cross-view sources)
        names = "+".join(str(c) for c, _ in stages)
        stages = [(names, datasets.concatenate_datasets([r for _, r in stages]).shuffle(seed=recipe.train.seed))]
    return [(c, r, trl_reward_funcs(task_rewards(recipe, unique_tasks(r)))) for c, r in stages]


def grpo_config(recipe: Recipe, settings: Any, output_dir: Path) -> Any:
    """The ``trl.GRPOConfig`` of ``recipe`` on this host; TRL's own checks become SpecError."""
    from trl import GRPOConfig

    from .models import build_config

    g = recipe.require("grpo")
    extra: dict[str, Any] = {}
    if settings.bf16 and str(settings.dtype) == "torch.float32" and "model_init_kwargs" not in (g.model_extra or {}):
        # the KL reference is never trained: bf16 storage, not the policy's fp32 master weights
        extra["model_init_kwargs"] = {"dtype": "bfloat16"}
    return build_config(recipe, settings, output_dir, GRPOConfig, **extra)


def _model_files(name_or_path: str) -> Path:
    """The local folder of a model (a Hub id resolves to its cached snapshot)."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name_or_path))


def policy_folder(name_or_path: str, processor: Any, out: Path) -> Path:
    """A folder holding the model of ``name_or_path`` (files linked) and ``processor`` (saved).

    ``out`` is created and owned by geodata (marked by :data:`LINK_MARKER`); an existing
    ``out`` without the marker is an error, never overwritten.
    """
    from .models import save_processor

    from geodata.dataset import ownership as own

    src = _model_files(name_or_path).resolve()
    out = Path(out)
    marked, listed = own.read_listing(out, LINK_MARKER)
    if out.exists() and not marked:
        raise BuildError(f"{out} exists and was not written by geodata (no {LINK_MARKER}); remove it or move output_dir")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = own.make_temp(out)
    try:  # made beside, then moved in: only the entries geodata listed are replaced
        for f in src.iterdir():
            if f.is_file() and f.name not in PROCESSOR_FILES and not f.name.startswith("."):
                os.symlink(f, tmp / f.name)
        save_processor(processor, tmp)
        old = listed if listed is not None else {  # an older marker: its links and same-bytes files
            f.name for f in (out.iterdir() if out.is_dir() else ()) if f.is_symlink() or own._same_bytes(f, tmp / f.name)}
        own.install_files(tmp, out, old,
                          lambda files, partial: own.write_listing(out, LINK_MARKER, files, partial, linked_from=str(src)),
                          "grpo's policy folder", "remove it or move output_dir")
    finally:
        own.remove_temp(tmp)
    return out


def run(
    recipe: Recipe | str | Path, sets: Iterable[str] = (), callbacks: list[Any] | None = None
) -> Path:
    """Train ``recipe`` with GRPO; save the model and processor to ``train.output_dir``.

    One ``data.config`` trains here; a list runs :func:`run_stages` (one process per stage,
    ``callbacks`` are not passed on).

    Parameters
    ----------
    recipe
        A loaded recipe, a recipe name or a YAML path.
    sets
        ``key=value`` overrides (when ``recipe`` is a name or path).
    callbacks
        Extra ``transformers.TrainerCallback`` objects.

    Returns
    -------
    Path
        The output folder (the last stage's model).
    """
    sets = list(sets)
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, sets)
    from .sft import claim_output_dir

    claim_output_dir(recipe)
    if len(recipe.data.configs) > 1 and recipe.grpo is not None and recipe.grpo.stages:
        return run_stages(recipe, sets)
    [(config, rows, funcs)] = prepare(recipe)
    import datasets

    from .data import load_eval_rows
    from .sft import fit, resume_model, resume_point

    evals = [load_eval_rows(recipe.data, "grpo", GRPO_COLUMNS, c, recipe.where) for c in recipe.data.configs]
    eval_rows = None if evals[0] is None else datasets.concatenate_datasets(evals)
    resume = resume_point(recipe)
    from trl import GRPOTrainer

    from .models import device_settings, load_model, load_processor

    settings = device_settings(recipe.model, recipe.where)
    out = recipe.output_dir
    args = grpo_config(recipe, settings, out)
    processor = load_processor(recipe.model, padding_side="left")
    model: Any = load_model(resume_model(recipe, resume), settings)
    # the KL reference and vLLM load from model.name_or_path: the starting weights (or the
    # base model, grpo.reference=base) with the trainer's processor, so one image size holds
    ref = recipe.grpo.reference_model or recipe.model.name_or_path
    policy_dir = out / ".geodata" / "policy"
    state = args.distributed_state  # one writer per node; every rank waits for it
    if state.is_local_main_process:
        policy_folder(ref, processor, policy_dir)
    state.wait_for_everyone()
    policy = str(policy_dir)
    model.config._name_or_path = policy  # the reference: trl get_config_model_id(model.config)
    model.name_or_path = policy  # vLLM: LLM(model=model.name_or_path)
    log.info(
        "grpo %s%s: %d rows, rewards %s, weights %s, autocast %s, %s%s",
        recipe.name,
        f" [{config}]" if config else "",
        len(rows),
        [f.__name__ for f in funcs],
        settings.dtype,
        "bf16" if args.bf16 else "fp16" if args.fp16 else "off",
        settings.attn_implementation,
        f", resuming from {resume}" if resume else "",
    )
    return fit(GRPOTrainer, recipe, processor, resume, model=model, reward_funcs=funcs, args=args,
               train_dataset=rows, eval_dataset=eval_rows, callbacks=callbacks)


_STAGE_KEYS = ("data.config", "model.name_or_path", "train.output_dir", "grpo.reference_model",
               "train.resume_from_checkpoint")


def _stage_command(
    recipe: Recipe, sets: list[str], config: str, start: str, out: Path, resume: bool, reference: str | None
) -> list[str]:
    """``[launcher] -m geodata_train grpo RECIPE --set ...`` for one stage."""
    import shlex

    g = recipe.require("grpo")
    launcher = shlex.split(g.stage_launcher) if g.stage_launcher else [sys.executable]
    keep = [s for s in sets if s.split("=", 1)[0].strip() not in _STAGE_KEYS]
    stage = [f"data.config={config}", f"model.name_or_path={start}", f"train.output_dir={out}"]
    if reference:
        stage.append(f"grpo.reference_model={reference}")
    if resume:
        stage.append("train.resume_from_checkpoint=last")
    return [*launcher, "-m", "geodata_train", "grpo", str(recipe.path or recipe.name), *[a for s in keep + stage for a in ("--set", s)]]


def run_stages(recipe: Recipe, sets: Iterable[str] = ()) -> Path:
    """Run each ``data.config`` stage as its own process, resumable per stage.

    A stage whose folder holds :data:`STAGE_MARKER` is skipped; one with ``checkpoint-*``
    folders but no marker resumes from the last of them.
    """
    from transformers.trainer_utils import get_last_checkpoint

    sets = list(sets)
    g = recipe.require("grpo")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SpecError(
            f"{recipe.where}: a multi-stage GRPO recipe starts one process per stage: run it without "
            f"accelerate launch and set grpo.stage_launcher (e.g. 'accelerate launch --config_file "
            f"geodata_train/accelerate/zero3.yaml --num_processes 8')"
        )
    prepare(recipe)  # every stage's rows and rewards are checked before the first one starts
    out = recipe.output_dir
    base = recipe.model.name_or_path
    start = base
    for i, config in enumerate(recipe.data.configs):
        assert config is not None
        stage_out = out / config
        marker = stage_out / STAGE_MARKER
        if marker.is_file():
            log.info("grpo %s [%s]: done earlier (%s), skipped", recipe.name, config, marker)
            start = str(stage_out)
            continue
        resume = stage_out.is_dir() and get_last_checkpoint(str(stage_out)) is not None
        reference = g.reference_model or (base if i > 0 and g.reference == "base" else None)
        cmd = _stage_command(recipe, sets, config, start, stage_out, resume, reference)
        log.info("grpo %s [%s] stage %d/%d: %s", recipe.name, config, i + 1, len(recipe.data.configs), " ".join(cmd))
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            raise BuildError(
                f"{recipe.where}: grpo stage '{config}' failed (exit {proc.returncode}); rerun to resume from "
                f"its last checkpoint in {stage_out}"
            )
        marker.write_text(json.dumps({"stage": config, "started_from": start, "reference": g.reference}) + "\n")
        start = str(stage_out)
    _link_final(Path(start), out)
    return out


def _link_final(stage: Path, out: Path) -> None:
    """Hard-link (else copy) the last stage's model files into ``out`` (geodata-marked)."""
    from geodata.dataset.ownership import link_or_copy

    from geodata.dataset import ownership as own

    files = [f for f in stage.iterdir() if f.is_file() and not f.name.startswith(".")]
    _, listed = own.read_listing(out, LINK_MARKER)
    old = listed if listed is not None else {  # an older marker: the files that hold the stage's bytes
        f.name for f in files if own._same_bytes(out / f.name, f)}
    own.refuse_clashes(out, [f.name for f in files], old, "grpo's final model", "move output_dir")
    new = {f.name for f in files}

    def mark(names: set[str], partial: bool) -> None:
        own.write_listing(out, LINK_MARKER, names, partial, linked_from=str(stage))

    mark(old | new, True)
    for f in files:
        link_or_copy(f, out / f.name)
    for name in sorted(old - new):
        if (out / name).is_file() and not (out / name).is_symlink():
            (out / name).unlink()
    mark(new, False)
