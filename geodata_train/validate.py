"""Validate a recipe and, optionally, its dataset and rewards, without torch or any model."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterable

from .recipe import Recipe, load_recipe

__all__ = ["check"]


def check(recipe: Recipe | str | Path, sets: Iterable[str] = (), data: bool = True) -> list[str]:
    """Run every check a training command runs before it loads a model.

    The recipe, the TRL config it builds (when the train extra is installed), and with
    ``data`` the dataset's columns and the rewards of its tasks.

    Parameters
    ----------
    recipe
        A loaded recipe, a recipe name or a YAML path.
    sets
        ``key=value`` overrides.
    data
        Also load the dataset and check its columns and the rewards of its tasks.

    Returns
    -------
    list of str
        One line per finding, for the CLI.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, sets)
    lines = [f"{recipe.where}: recipe ok"]
    if importlib.util.find_spec("trl") is not None and (recipe.sft is not None or recipe.grpo is not None):
        from .models import device_settings

        settings = device_settings(recipe.model, recipe.where)
        if recipe.sft is not None:
            from .sft import sft_config

            sft_config(recipe, settings)
            lines.append("sft: trl.SFTConfig ok")
        if recipe.grpo is not None:
            from .grpo import grpo_config

            grpo_config(recipe, settings, recipe.output_dir)
            lines.append("grpo: trl.GRPOConfig ok")
    if not data:
        return lines
    if recipe.sft is not None:
        from . import sft

        rows = sft.prepare(recipe)
        lines.append(f"sft: {len(rows)} rows from {recipe.data.dataset}")
    if recipe.grpo is not None:
        from . import grpo

        for config, rows, funcs in grpo.prepare(recipe):
            stage = f" [{config}]" if config else ""
            names = ", ".join(f.__name__ for f in funcs)
            lines.append(f"grpo{stage}: {len(rows)} rows from {recipe.data.dataset}, rewards {names}")
    if recipe.sft is None and recipe.grpo is None:
        from . import predict

        rows = predict.prepare(recipe)
        lines.append(f"predict: {len(rows)} rows from {recipe.data.dataset}")
    return lines
