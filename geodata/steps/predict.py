"""A served base model's predictions, made inside a build (MP16-Hard-200K hotspot mining).

:func:`model_predictions` (step id ``predict`` in ``pipelines/mp16-hard-200k.yaml``) asks an
OpenAI-compatible endpoint (:mod:`geodata.inference`) the Chain-of-Region question for every
photo and puts the answers in place of the ``predictions`` source table, in the one
predictions schema (:data:`geodata.predictions.PREDICTION_COLUMNS`: ``id``, ``config``, ``task``,
``completion``, ``pred_lat``, ``pred_lon``, ``answer``, ``parsed``, ``finish_reason``,
``engine``, ``model``), so ``join_predictions`` and the hotspot steps after it run unchanged::

    geodata build mp16-hard-200k --set predict.base_url=http://127.0.0.1:8000/v1

A failed request is never a silent "not solved": with more failed requests than
``max_failed_fraction`` (default 0) of those sent the build fails with the count and the cause
(the answers that did arrive are cached, so a rerun sends only the failed ones); a build that
accepts some failures is recorded as incomplete, so the next build is not "up to date" and
sends them again. Rows whose image fails the decode check are dropped (counted) before any
request. Without ``base_url`` the step does nothing and the predictions source is used as before.
"""

from __future__ import annotations

import logging

import polars as pl

from ..context import StepContext, StepOutput
from ..registry import step
from ..schema import THINK_ANSWER_SUFFIX
from .core import _need
from .mp16 import COR_QUESTION

__all__ = ["model_predictions", "INCOMPLETE_NOTE"]

log = logging.getLogger("geodata")

#: a note key ending in this marks a build that must not count as up to date (failed requests to retry)
INCOMPLETE_NOTE = ".incomplete"


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
    max_failed_fraction: float = 0.0,
    question: str = COR_QUESTION,
    system_prompt: str | None = None,
    task: str = "geolocation",
    table: str = "predictions",
    emit: str | None = "predictions",
    predictions: pl.DataFrame | None = None,
) -> StepOutput:
    """Predict every row's location with a served model; the answers become table ``table``.

    A join: the step provides table ``table`` to later steps (``inputs: {predictions:
    predict}``): the new predictions, or without ``base_url`` its input ``predictions``
    (e.g. a ``predictions`` reader table) unchanged.

    Each row's images and ``question`` (the Chain-of-Region prompt, as in the
    ``chain_of_region`` rows) go to ``base_url``; answers are parsed as ``task`` answers into
    the one predictions schema (unparsable ones keep ``parsed = false`` and null coordinates).
    Rows whose image cannot be read or fails the decode check are dropped (counted as
    ``missing_image`` / ``undecodable_image`` / ``image_too_large``) and never sent. If more
    than ``max_failed_fraction`` of the requests sent still fail after their retries, the
    build fails naming the count and the cause; failures within the limit leave those rows
    without a prediction, are warned about and noted, and make the next build retry them.
    With ``emit`` the table is also written as that config of the dataset.
    """
    out = StepOutput()
    if base_url is None:
        if predictions is not None:
            out.provide(table, predictions)
        return out.result(df)
    from ..errors import BuildError
    from ..inference import ChatRequest, chat, endpoint_from_params
    from ..predictions import prediction_table

    _need(df, ctx, "id", "images")
    if not 0.0 <= max_failed_fraction <= 1.0:
        raise BuildError(f"step '{ctx.name}': max_failed_fraction must be within 0..1 (got {max_failed_fraction})")
    ep = endpoint_from_params(
        ctx.name, base_url=base_url, model=model, api_key_env=api_key_env, temperature=temperature,
        max_tokens=max_tokens, top_p=top_p, seed=seed, concurrency=concurrency, timeout=timeout,
        max_retries=max_retries, backoff=backoff,
    )
    text = f"{question} {THINK_ANSWER_SUFFIX}"
    requests = [ChatRequest(text=text, images=tuple(imgs or ()), system=system_prompt) for imgs in df["images"].to_list()]
    try:
        results, stats = chat(requests, ep, label=ctx.name, max_pixels=ctx.limits.get("max_image_pixels"),
                              progress=ctx.progress)
    except BuildError as exc:
        raise BuildError(f"step '{ctx.name}': {exc}") from None
    skipped = pl.Series([r.skipped for r in results], dtype=pl.Boolean)
    for reason, n in stats.skipped.items():
        out.drop(reason, n)
    answers = pl.Series("completion", [r.text for r in results], dtype=pl.String)
    ok = answers.is_not_null()
    sent = len(results) - int(skipped.sum())
    failed = stats.failed
    if failed and failed > max_failed_fraction * sent:
        raise BuildError(
            f"step '{ctx.name}': {failed} of {sent} requests failed: {stats.cause()}. The {sent - failed} answers "
            f"that arrived are cached: rerun the build to send only the failed requests again"
            + (f", or accept up to a share of failures with --set {ctx.name}.max_failed_fraction="
               f"{min(1.0, round(failed / sent + 0.005, 2)):g}" if sent else "")
        )
    preds = prediction_table(
        df["id"].cast(pl.String).to_list(), task, answers.to_list(), [r.finish_reason for r in results],
        "openai", stats.model,
    ).filter(ok)
    out.provide(table, preds)
    if emit:
        out.emit(emit, preds)
    unparsed = int((~preds["parsed"]).sum())
    truncated = int((preds["finish_reason"] == "length").sum())
    out.note(f"{ctx.name}.inference", stats.note(ep.sampling()))
    out.note(f"{ctx.name}.predictions", {"rows": preds.height, "unparsed": unparsed, "truncated": truncated,
                                         "failed": failed, "skipped_images": int(skipped.sum())})
    if failed:
        msg = (f"{failed} of {sent} requests failed ({stats.cause()}); their rows have no prediction and "
               f"the next build sends them again")
        log.warning("step '%s': %s", ctx.name, msg)
        out.note(f"{ctx.name}{INCOMPLETE_NOTE}", msg)
    if truncated:
        log.warning("step '%s': %d answers were cut by max_tokens=%d (finish_reason: length)", ctx.name, truncated,
                    max_tokens)
    if preds.height and unparsed == preds.height:
        log.warning("step '%s': none of the %d answers could be parsed: no row counts as solved", ctx.name, unparsed)
    # the source table this replaced is described by these notes: say what holds now
    out.note(f"{table}.file", f"replaced by step '{ctx.name}' ({stats.model}, {stats.kind})")
    out.note(f"{table}.rows", preds.height)
    out.note(f"{table}.unparsed", unparsed)
    return out.result(df.filter(~skipped))
