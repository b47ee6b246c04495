"""GRPO: TRL ``GRPOTrainer`` with the ``geodata`` rewards picked per row by its ``task``.

``grpo.num_generations``, ``beta``, the lengths and the sampling settings come from the
recipe. A ``data.config`` list trains stage by stage (GeoVLM-R1's task-by-task GRPO): each
config in turn, continuing from the previous stage's weights, each stage saved under
``<output_dir>/<config>`` and the last one also in ``<output_dir>``. vLLM generation is used
when ``grpo.use_vllm`` is set and vLLM is installed.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Iterable

from geodata.errors import SpecError

from .recipe import Recipe, load_recipe

__all__ = ["prepare", "run", "grpo_config"]

log = logging.getLogger("geodata.training")


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
        raise SpecError(f"{recipe.where}: grpo.use_vllm is set but vllm is not installed")
    stages = []
    for config in recipe.data.configs:
        rows = load_rows(recipe.data, "grpo", config, recipe.where)
        rows = rows.select_columns(["images", "prompt", "task", "solution"])
        funcs = trl_reward_funcs(task_rewards(recipe, unique_tasks(rows)))
        stages.append((config, rows, funcs))
    return stages


def grpo_config(recipe: Recipe, settings: Any, output_dir: Path) -> Any:
    """The ``trl.GRPOConfig`` of ``recipe`` on this host; TRL's own checks become SpecError."""
    from trl import GRPOConfig

    from .models import trainer_kwargs

    g = recipe.grpo
    assert g is not None
    kwargs: dict[str, Any] = trainer_kwargs(recipe, settings, output_dir)
    kwargs.update(
        num_generations=g.num_generations,
        generation_batch_size=g.generation_batch_size,
        beta=g.beta,
        epsilon=g.epsilon,
        num_iterations=g.num_iterations,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        log_completions=g.log_completions,
        remove_unused_columns=False,
    )
    try:
        return GRPOConfig(**kwargs)
    except ValueError as exc:
        raise SpecError(f"{recipe.where}: grpo: {str(exc).splitlines()[0]}") from None


def run(
    recipe: Recipe | str | Path, sets: Iterable[str] = (), callbacks: list[Any] | None = None
) -> Path:
    """Train ``recipe`` with GRPO; save the model and processor to ``train.output_dir``.

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
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, sets)
    stages = prepare(recipe)
    from trl import GRPOTrainer

    from .models import device_settings, load_model, load_processor, lora_config
    from .sft import save

    settings = device_settings(recipe.model, recipe.where)
    out = recipe.output_dir
    args = [
        grpo_config(recipe, settings, out / config if config and len(stages) > 1 else out)
        for config, _, _ in stages
    ]
    processor = load_processor(recipe.model, padding_side="left")
    model: Any = load_model(recipe.model, settings)
    peft = lora_config(recipe.model.lora)
    trainer = None
    for (config, rows, funcs), stage_args in zip(stages, args):
        log.info(
            "grpo %s%s: %d rows, rewards %s, %s, %s",
            recipe.name,
            f" [{config}]" if config else "",
            len(rows),
            [f.__name__ for f in funcs],
            settings.dtype,
            settings.attn_implementation,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=stage_args,
            train_dataset=rows,
            processing_class=processor,
            peft_config=peft,
            callbacks=callbacks,
        )
        trainer.train()
        model, peft = trainer.model, None  # later stages continue from this stage's weights
        if len(stages) > 1:
            processor.save_pretrained(stage_args.output_dir)
            trainer.save_model(stage_args.output_dir)
    assert trainer is not None
    return save(trainer, recipe, processor)
