"""Batch generation over a dataset, written as a predictions Parquet file.

Columns: ``id``, ``task``, ``completion`` (the generated text) and, for rows whose task is
``geolocation``, ``pred_lat`` / ``pred_lon`` parsed from the completion (null where no
coordinate can be read). The Hard-200K pipeline and ``geodata eval`` read this file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .recipe import Recipe, load_recipe

__all__ = ["PREDICTION_COLUMNS", "parse_coords", "prepare", "generate", "run"]

log = logging.getLogger("geodata.training")

PREDICTION_COLUMNS: tuple[str, ...] = ("id", "task", "completion", "pred_lat", "pred_lon")


def parse_coords(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude read from each completion (NaN where none can be read).

    Uses geodata's coordinate parser (the one the geolocation reward and ``geodata eval``
    use), so that a prediction counts exactly when they would count it.
    """
    from geodata.parse import parse_coords as _parse

    parsed = _parse(list(texts))
    return parsed.lat, parsed.lon


def prepare(recipe: Recipe) -> Any:
    """Load and check the rows to predict on (no model is loaded)."""
    import datasets

    from .data import load_rows

    parts = [load_rows(recipe.data, "predict", c, recipe.where) for c in recipe.data.configs]
    ds = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if "task" not in ds.column_names:
        ds = ds.add_column("task", [""] * len(ds))
    return ds.select_columns(["id", "task", "images", "prompt"])


def generate(
    model: Any,
    processor: Any,
    prompts: Sequence[Sequence[dict[str, Any]]],
    images: Sequence[Sequence[Any]],
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[str]:
    """Generate one completion per prompt (chat messages with image placeholders)."""
    import torch
    from trl.data_utils import prepare_multimodal_messages

    texts = [
        processor.apply_chat_template(
            prepare_multimodal_messages(list(p), images=list(imgs or [])),
            tokenize=False,
            add_generation_prompt=True,
        )
        for p, imgs in zip(prompts, images)
    ]
    flat = [list(imgs or []) for imgs in images]
    inputs = processor(
        text=texts,
        images=flat if any(flat) else None,
        padding=True,
        padding_side="left",
        return_tensors="pt",
    ).to(model.device)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample)
    if do_sample:
        kwargs["temperature"] = temperature
    with torch.inference_mode():
        out = model.generate(**inputs, **kwargs)
    new = out[:, inputs["input_ids"].shape[1] :]
    return processor.batch_decode(new, skip_special_tokens=True)


def run(recipe: Recipe | str | Path, sets: Iterable[str] = (), out: Path | None = None) -> Path:
    """Predict over the recipe's ``data`` with its ``model``; write the predictions Parquet.

    Parameters
    ----------
    recipe
        A loaded recipe, a recipe name or a YAML path.
    sets
        ``key=value`` overrides (when ``recipe`` is a name or path).
    out
        The Parquet file (default: ``predict.output``, else ``<output_dir>/predictions.parquet``).

    Returns
    -------
    Path
        The predictions file.
    """
    import polars as pl

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, sets)
    rows = prepare(recipe)
    from .models import device_settings, load_model, load_processor

    p = recipe.predict
    out = Path(out or p.output or recipe.output_dir / "predictions.parquet")
    settings = device_settings(recipe.model, recipe.where)
    processor = load_processor(recipe.model, padding_side="left")
    model = load_model(recipe.model, settings, for_training=False)
    if settings.cuda:
        model = model.to("cuda")
    model.eval()
    completions: list[str] = []
    for start in range(0, len(rows), p.batch_size):
        batch = rows[start : start + p.batch_size]
        completions += generate(
            model,
            processor,
            batch["prompt"],
            batch["images"],
            max_new_tokens=p.max_new_tokens,
            do_sample=p.do_sample,
            temperature=p.temperature,
        )
        log.info("predict %s: %d/%d rows", recipe.name, len(completions), len(rows))
    tasks = [str(t) for t in rows["task"]]
    lat = np.full(len(rows), np.nan)
    lon = np.full(len(rows), np.nan)
    geo = [i for i, t in enumerate(tasks) if t == "geolocation"]
    if geo:
        glat, glon = parse_coords([completions[i] for i in geo])
        lat[geo], lon[geo] = glat, glon
    df = pl.DataFrame(
        {
            "id": [str(i) for i in rows["id"]],
            "task": tasks,
            "completion": completions,
            "pred_lat": lat,
            "pred_lon": lon,
        }
    ).with_columns(pl.col("pred_lat", "pred_lon").fill_nan(None))
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out)
    return out
