"""The one predictions schema: what every engine writes and every reader of predictions reads.

``geodata predict`` (local generation, the vLLM offline engine, an OpenAI-compatible endpoint)
and the served-model step of MP16-Hard-200K (:mod:`geodata.steps.predict`) write
:data:`PREDICTION_COLUMNS` through :func:`prediction_table`; the predictions source
(:mod:`geodata.sources.predictions`), hotspot mining and ``geodata eval`` read it.

=============  ====================================================================
id             the row's id in the dataset predicted on (MP-16 ``IMG_ID``, ...)
config         the dataset config the row came from (null where not known)
task           the row's task (``geolocation``, ``vqa``, ...); null when the dataset has none
completion     the model's raw output
pred_lat       geolocation rows: latitude read by :func:`geodata.tasks.geolocation.parse.parse_coords`
pred_lon       geolocation rows: longitude (both null when unreadable or out of range)
answer         the text of the last ``<answer>`` block (the whole text without one), stripped
parsed         geolocation: a coordinate pair was read; other tasks: ``answer`` is not empty
finish_reason  ``stop``, ``length`` (cut by the token limit) ...; null where the engine gives none
engine         ``hf``, ``vllm`` or ``openai`` (an OpenAI-compatible endpoint)
model          the model id or path that answered
=============  ====================================================================
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from .tasks.geolocation.parse import answer_bodies, parse_coords

__all__ = ["PREDICTION_SCHEMA", "PREDICTION_COLUMNS", "RUN_COLUMNS", "prediction_table", "missing_schema_columns"]

#: The one predictions schema (column -> polars dtype), in column order.
PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(), "config": pl.String(), "task": pl.String(), "completion": pl.String(), "pred_lat": pl.Float64(),
    "pred_lon": pl.Float64(), "answer": pl.String(), "parsed": pl.Boolean(), "finish_reason": pl.String(),
    "engine": pl.String(), "model": pl.String(),
}
PREDICTION_COLUMNS: tuple[str, ...] = tuple(PREDICTION_SCHEMA)
#: schema columns that are facts of the run, not needed to score or mine
RUN_COLUMNS = ("config", "task", "answer", "finish_reason", "engine", "model")


def prediction_table(
    ids: Sequence[str],
    tasks: Sequence[str | None] | str | None,
    completions: Sequence[str | None],
    finish_reasons: Sequence[str | None] | None,
    engine: str,
    model: str,
    configs: Sequence[str | None] | str | None = None,
) -> pl.DataFrame:
    """Predictions in the one schema (:data:`PREDICTION_COLUMNS`), parsed by each row's task.

    ``tasks`` and ``configs`` may be one value for every row. Coordinates are read only for ``geolocation``
    rows, with the parser the geolocation reward and ``geodata eval`` use.

    Examples
    --------
    >>> t = prediction_table(["a", "b", "c"], ["geolocation", "geolocation", "vqa"],
    ...                      ["<answer>(1.5, 2)</answer>", "no idea", "<answer> yes </answer>"],
    ...                      ["stop", "length", "stop"], "openai", "m")
    >>> t.select("id", "pred_lat", "answer", "parsed", "finish_reason").rows()
    [('a', 1.5, '(1.5, 2)', True, 'stop'), ('b', None, 'no idea', False, 'length'), ('c', None, 'yes', True, 'stop')]
    """
    n = len(ids)
    task_list = [tasks] * n if tasks is None or isinstance(tasks, str) else [t or None for t in tasks]
    text = pl.Series("completion", list(completions), dtype=pl.String)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    geo = np.array([t == "geolocation" for t in task_list], dtype=bool)
    if geo.any():
        idx = np.flatnonzero(geo)
        p = parse_coords(text.gather(idx))
        with np.errstate(invalid="ignore"):
            good = p.ok & (np.abs(p.lat) <= 90) & (np.abs(p.lon) <= 180)
        lat[idx] = np.where(good, p.lat, np.nan)
        lon[idx] = np.where(good, p.lon, np.nan)
    answer = answer_bodies(text).str.strip_chars() if n else pl.Series([], dtype=pl.String)
    answer = pl.Series("answer", answer).replace("", None) if n else answer
    parsed = np.where(geo, np.isfinite(lat) & np.isfinite(lon), answer.is_not_null().to_numpy() if n else geo)
    return pl.DataFrame(
        {
            "id": pl.Series(list(ids), dtype=pl.String).cast(pl.String),
            "config": pl.Series([configs] * n if configs is None or isinstance(configs, str) else list(configs),
                                dtype=pl.String),
            "task": pl.Series(task_list, dtype=pl.String),
            "completion": text,
            "pred_lat": pl.Series(lat).fill_nan(None),
            "pred_lon": pl.Series(lon).fill_nan(None),
            "answer": answer,
            "parsed": pl.Series(parsed, dtype=pl.Boolean),
            "finish_reason": pl.Series(list(finish_reasons) if finish_reasons is not None else [None] * n,
                                       dtype=pl.String),
            "engine": pl.Series([engine] * n, dtype=pl.String),
            "model": pl.Series([model] * n, dtype=pl.String),
        },
        schema=PREDICTION_SCHEMA,
    )


def missing_schema_columns(columns: Sequence[str]) -> list[str]:
    """The schema's run columns a predictions table lacks (an older or foreign file)."""
    return [c for c in RUN_COLUMNS if c not in columns]

