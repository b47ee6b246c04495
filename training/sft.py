"""Supervised fine-tuning: TRL ``SFTTrainer`` on the prompt/completion rows with images.

The loss covers the completion only (``sft.completion_only_loss``); with ``model.lora`` the
adapter is trained and, by default, merged, so ``train.output_dir`` always holds a full
model plus its processor, loadable by the GRPO recipe that follows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

from .recipe import Recipe, load_recipe

__all__ = ["prepare", "run"]

log = logging.getLogger("geodata.training")


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
    keep = ["images", "prompt", "completion"]
    parts = [p.select_columns(keep) for p in parts]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def sft_config(recipe: Recipe, settings: Any) -> Any:
    """The ``trl.SFTConfig`` of ``recipe`` on this host."""
    from trl import SFTConfig

    from .models import trainer_kwargs

    s = recipe.sft
    assert s is not None
    return SFTConfig(
        **trainer_kwargs(recipe, settings, recipe.output_dir),
        max_length=s.max_length,
        completion_only_loss=s.completion_only_loss,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
    )


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
    rows = prepare(recipe)
    from trl import SFTTrainer

    from .models import device_settings, load_model, load_processor, lora_config

    settings = device_settings(recipe.model, recipe.where)
    args = sft_config(recipe, settings)
    processor = load_processor(recipe.model, padding_side="right")
    model = load_model(recipe.model, settings)
    log.info("sft %s: %d rows, %s, %s", recipe.name, len(rows), settings.dtype, settings.attn_implementation)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        processing_class=processor,
        peft_config=lora_config(recipe.model.lora),
        callbacks=callbacks,
    )
    trainer.train()
    return save(trainer, recipe, processor)


def save(trainer: Any, recipe: Recipe, processor: Any) -> Path:
    """Save the model (LoRA merged unless ``lora.merge`` is false) and the processor.

    Under DeepSpeed the adapter is saved unmerged (the weights are sharded); transformers
    loads such a folder onto its base model when ``peft`` is installed.
    """
    out = recipe.output_dir
    lora = recipe.model.lora
    acc = trainer.accelerator
    if lora is not None and lora.merge and not trainer.is_deepspeed_enabled:
        acc.wait_for_everyone()
        if acc.is_main_process:
            acc.unwrap_model(trainer.model).merge_and_unload().save_pretrained(out)
    else:
        trainer.save_model(str(out))
    if acc.is_main_process:
        processor.save_pretrained(out)
    acc.wait_for_everyone()
    return out
