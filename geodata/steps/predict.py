"""A served base model's predictions, made inside a build (MP16-Hard-200K hotspot mining).

:func:`model_predictions` (step id ``predict`` in ``pipelines/mp16-hard-200k.yaml``) asks an
OpenAI-compatible endpoint (:mod:`geodata.inference`) the Chain-of-Region question for every
photo, parses each answer with :func:`geodata.tasks.geolocation.parse.parse_coords`, and puts the result in
place of the ``predictions`` source table, in that table's columns (``id``, ``pred_lat``,
``pred_lon``, ``parsed``, ``completion``; see :mod:`geodata.sources.predictions`), so
``join_predictions`` and the hotspot steps after it run unchanged::

    geodata build mp16-hard-200k --set predict.base_url=http://127.0.0.1:8000/v1

Without ``base_url`` the step does nothing and the predictions source is used as before.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..tasks.geolocation.parse import parse_coords
from ..registry import step
from ..schema import THINK_ANSWER_SUFFIX
from .core import _need
from .mp16 import COR_QUESTION

__all__ = ["model_predictions"]


@step("model_predictions", kind="join")
def model_predictions(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = 1024,
    top_p: float | None = None,
    seed: int | None = None,
    concurrency: int = 16,
    timeout: float = 120.0,
    max_retries: int = 5,
    backoff: float = 1.0,
    question: str = COR_QUESTION,
    system_prompt: str | None = None,
    table: str = "predictions",
    emit: str | None = "predictions",
    predictions: pl.DataFrame | None = None,
) -> StepOutput:
    """Predict every row's location with a served model; the answers become table ``table``.

    A join: the step provides table ``table`` to later steps (``inputs: {predictions:
    predict}``): the new predictions, or without ``base_url`` its input ``predictions``
    (e.g. a ``predictions`` reader table) unchanged.

    The rows pass through unchanged. Each row's images and ``question`` (the Chain-of-Region
    prompt, as in the ``chain_of_region`` rows) go to ``base_url``; answers are parsed with
    the project's coordinate parser (unparsable ones keep ``parsed = false`` and null
    coordinates). Rows whose request still fails after the retries get no prediction (noted
    as ``errors``; ``join_predictions`` counts them as rows without a prediction). With
    ``emit`` the table is also written as that config of the dataset. Without ``base_url``
    no request is made.
    """
    out = StepOutput()
    if base_url is None:
        if predictions is not None:
            out.provide(table, predictions)
        return out.result(df)
    from ..errors import BuildError
    from ..inference import ChatRequest, chat, endpoint_from_params

    _need(df, ctx, "id", "images")
    ep = endpoint_from_params(
        ctx.name, base_url=base_url, model=model, api_key_env=api_key_env, temperature=temperature,
        max_tokens=max_tokens, top_p=top_p, seed=seed, concurrency=concurrency, timeout=timeout,
        max_retries=max_retries, backoff=backoff,
    )
    text = f"{question} {THINK_ANSWER_SUFFIX}"
    requests = [ChatRequest(text=text, images=tuple(imgs or ()), system=system_prompt) for imgs in df["images"].to_list()]
    try:
        results, stats = chat(requests, ep, label=ctx.name)
    except BuildError as exc:
        raise BuildError(f"step '{ctx.name}': {exc}") from None
    answers = pl.Series("completion", [r.text for r in results], dtype=pl.String)
    ok = answers.is_not_null()
    if df.height and not ok.any():
        raise BuildError(f"step '{ctx.name}': all {df.height} requests to {base_url} failed (e.g. {results[0].error})")
    p = parse_coords(answers)
    with np.errstate(invalid="ignore"):
        parsed = p.ok & (np.abs(p.lat) <= 90) & (np.abs(p.lon) <= 180)
    preds = pl.DataFrame(
        {
            "id": df["id"].cast(pl.String),
            "pred_lat": pl.Series(np.where(parsed, p.lat, np.nan)).fill_nan(None),
            "pred_lon": pl.Series(np.where(parsed, p.lon, np.nan)).fill_nan(None),
            "parsed": pl.Series(parsed, dtype=pl.Boolean),
            "completion": answers,
        }
    ).filter(ok)
    out.provide(table, preds)
    if emit:
        out.emit(emit, preds)
    out.note(f"{ctx.name}.inference", stats.note(ep.sampling()))
    out.note(f"{ctx.name}.predictions", {"rows": preds.height, "unparsed": int((~preds["parsed"]).sum()),
                                                 "errors": int((~ok).sum())})
    # the source table this replaced is described by these notes: say what holds now
    out.note(f"{table}.file", f"replaced by step '{ctx.name}' ({stats.model}, {stats.kind})")
    out.note(f"{table}.rows", preds.height)
    out.note(f"{table}.unparsed", int((~preds["parsed"]).sum()))
    return out.result(df)
