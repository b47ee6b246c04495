"""Supervised fine-tuning: TRL ``SFTTrainer`` on the prompt/completion rows with images.

The loss covers the completion only (``sft.completion_only_loss``); with ``model.lora`` the
adapter is trained and, by default, merged, so ``train.output_dir`` always holds a full
model plus its processor, loadable by the GRPO recipe that follows. ``train.resume_from_checkpoint``
(``--resume``) continues from a ``checkpoint-*`` folder; ``data.eval_split`` adds an eval set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

from geodata.errors import SpecError

from .recipe import Recipe, load_recipe

__all__ = ["prepare", "prepare_eval", "resume_point", "resume_model", "resume_trainer", "run", "sft_config", "save", "fit"]

log = logging.getLogger("geodata.training")

#: the columns SFT trains on
SFT_COLUMNS = ["images", "prompt", "completion"]
#: written first into every ``train.output_dir`` geodata trains into; a non-empty folder
#: without it is never written (checkpoints, model files and the processor would replace files)
RUN_MARKER = ".geodata-run.json"


def claim_output_dir(recipe: Recipe) -> Path:
    """``train.output_dir``, created and marked (:data:`RUN_MARKER`) when missing or empty; a
    non-empty folder geodata did not train into is a one-line OwnershipError before any work."""
    from geodata.dataset.ownership import claim_folder

    return claim_folder(recipe.output_dir, RUN_MARKER, f"{recipe.where}: train.output_dir")


def prepare(recipe: Recipe) -> Any:
    """Validate ``recipe`` for SFT and load its rows (no model is loaded).

    Returns
    -------
    datasets.Dataset
        The training rows (every config of ``data.config`` concatenated).
    """
    import datasets

    from .data import load_rows

    recipe.require("sft")
    parts = [load_rows(recipe.data, "sft", c, recipe.where) for c in recipe.data.configs]
    parts = [p.select_columns(SFT_COLUMNS) for p in parts]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def prepare_eval(recipe: Recipe) -> Any:
    """The ``data.eval_split`` rows of every config, concatenated (``None`` without an eval split)."""
    import datasets

    from .data import load_eval_rows

    parts = [load_eval_rows(recipe.data, "sft", SFT_COLUMNS, c, recipe.where) for c in recipe.data.configs]
    if parts[0] is None:
        return None
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def resume_point(recipe: Recipe, output_dir: Path | None = None) -> str | None:
    """The checkpoint ``train.resume_from_checkpoint`` names (``last``: the newest in ``output_dir``).

    Raises
    ------
    SpecError
        ``last`` with no ``checkpoint-*`` folder, or a folder that is not a trainer checkpoint.
    """
    value = recipe.train.resume_from_checkpoint
    if not value:
        return None
    out = Path(output_dir or recipe.output_dir)
    if value == "last":
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(out)) if out.is_dir() else None
        if last is None:
            raise SpecError(f"{recipe.where}: --resume: no checkpoint-* folder in {out} to resume from")
        return last
    path = Path(value)
    if not (path / "trainer_state.json").is_file():
        raise SpecError(
            f"{recipe.where}: train.resume_from_checkpoint '{value}' is not a trainer checkpoint "
            f"(no trainer_state.json)"
        )
    return str(path)


def _deepspeed() -> bool:
    import os

    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")


def resume_model(recipe: Recipe, resume: str | None) -> Any:
    """The ``model`` section to load: the checkpoint's weights when resuming a full fine-tune.

    ``Trainer`` restores a checkpoint by loading its state dict into the model as is, which
    misses every tensor when the checkpoint was saved under Qwen's checkpoint names
    (``model.layers.*``, ``visual.*``) and the model uses transformers' (``model.language_model.*``):
    the run would go on from the initial weights. ``from_pretrained`` maps the names, so the
    weights come from there and :func:`resume_trainer` lets the trainer restore only the
    optimizer, scheduler, RNG and step. LoRA and DeepSpeed checkpoints keep the trainer's path.
    """
    if resume is None or recipe.model.lora is not None or _deepspeed():
        return recipe.model
    return recipe.model.model_copy(update={"name_or_path": resume})


def resume_trainer(trainer: Any, recipe: Recipe, resume: str | None) -> None:
    """Skip the trainer's own weight reload when :func:`resume_model` loaded the checkpoint."""
    if resume_model(recipe, resume) is not recipe.model:
        trainer._load_from_checkpoint = lambda *a, **k: None


def sft_config(recipe: Recipe, settings: Any) -> Any:
    """The ``trl.SFTConfig`` of ``recipe`` on this host (any SFTConfig field from the recipe)."""
    from trl import SFTConfig

    from .models import build_config

    recipe.require("sft")
    extra: dict[str, Any] = {}
    if "dataset_kwargs" not in (recipe.sft.model_extra or {}):
        extra["dataset_kwargs"] = {"skip_prepare_dataset": True}
    return build_config(recipe, settings, recipe.output_dir, SFTConfig, **extra)


def run(
    recipe: Recipe | str | Path, sets: Iterable[str] = (), callbacks: list[Any] | None = None
) -> Path:
    """Train ``recipe`` with SFT and save the model and processor to ``train.output_dir``.

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
        The output folder.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, sets)
    claim_output_dir(recipe)
    rows = prepare(recipe)
    eval_rows = prepare_eval(recipe)
    resume = resume_point(recipe)
    from trl import SFTTrainer

    from .models import device_settings, load_model, load_processor

    settings = device_settings(recipe.model, recipe.where)
    args = sft_config(recipe, settings)
    processor = load_processor(recipe.model, padding_side="right")
    model = load_model(resume_model(recipe, resume), settings)
    log.info(
        "sft %s: %d rows, weights %s, autocast %s, %s%s",
        recipe.name,
        len(rows),
        settings.dtype,
        "bf16" if args.bf16 else "fp16" if args.fp16 else "off",
        settings.attn_implementation,
        f", resuming from {resume}" if resume else "",
    )
    return fit(SFTTrainer, recipe, processor, resume, model=model, args=args, train_dataset=rows,
               eval_dataset=eval_rows, callbacks=callbacks)


def fit(trainer_cls: Any, recipe: Recipe, processor: Any, resume: str | None, **kwargs: Any) -> Path:
    """Build a TRL trainer (SFT or GRPO) with the recipe's processor and LoRA, train, resume, save."""
    from .models import lora_config

    trainer = trainer_cls(processing_class=processor, peft_config=lora_config(recipe.model.lora), **kwargs)
    resume_trainer(trainer, recipe, resume)
    trainer.train(resume_from_checkpoint=resume)
    return save(trainer, recipe, processor)


def save(trainer: Any, recipe: Recipe, processor: Any, out: Path | None = None) -> Path:
    """Save the model (LoRA merged unless ``lora.merge`` is false) and the processor to ``out``.

    Under DeepSpeed the adapter is saved unmerged (the weights are sharded); transformers
    loads such a folder onto its base model when ``peft`` is installed.
    """
    from .models import save_processor

    out = Path(out or recipe.output_dir)
    lora = recipe.model.lora
    acc = trainer.accelerator
    if lora is not None and lora.merge and not trainer.is_deepspeed_enabled:
        acc.wait_for_everyone()
        if acc.is_main_process:
            acc.unwrap_model(trainer.model).merge_and_unload().save_pretrained(out)
    else:
        trainer.save_model(str(out))
    if acc.is_main_process:
        save_processor(processor, out)
    acc.wait_for_everyone()
    return out
