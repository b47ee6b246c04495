"""Batch generation over any built dataset, written in the one predictions schema.

Columns (:data:`PREDICTION_COLUMNS`, :func:`geodata.sources.predictions.prediction_table`):
``id``, ``config``, ``task``, ``completion``, ``pred_lat`` / ``pred_lon`` (geolocation rows,
read with the reward's parser), ``answer`` (the last ``<answer>`` block), ``parsed``,
``finish_reason`` (``stop`` / ``length``), ``engine`` (``hf``, ``vllm`` or ``openai``) and
``model``, whatever engine wrote them. Hotspot mining, the served-model step and
``geodata eval`` read this file.

Engines (``predict.engine``): ``hf`` (transformers ``generate``, the ``train`` extra),
``vllm`` (the offline ``vllm.LLM`` engine, when installed and CUDA is present; ``auto`` picks
it then), and ``openai`` (an OpenAI-compatible endpoint at ``predict.base_url``, through
geodata's cached, resumable client :mod:`geodata.inference`; ``auto`` picks it when
``base_url`` is set; no torch needed).

A dataset with several configs of rows needs ``data.config`` (``--config NAME``), or
``all`` to predict every config, each row labelled by its config.

At scale: under ``accelerate launch`` (or ``torchrun``) each of the ``WORLD_SIZE`` ranks
predicts the rows whose index modulo ``WORLD_SIZE`` is its ``RANK``, writing partial files
into ``<out>.parts/`` every ``predict.save_every`` batches; when all ranks are done, rank 0
merges them into ``<out>`` (in dataset order) and removes the parts. A rerun after a kill
skips the rows already in the partial files, whatever the world size was (and the openai
engine answers from its response cache the requests that were answered before). Throughput
(images/s) is printed per rank and overall.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow.parquet as pq

from geodata.dataset.ownership import check_out_file, is_marked_file, mark_table
from geodata.errors import BuildError, SourceError, SpecError
from geodata.predictions import PREDICTION_COLUMNS, PREDICTION_SCHEMA, prediction_table

from .recipe import Recipe, load_recipe

__all__ = ["PREDICTION_COLUMNS", "PARTS_MARKER", "parse_coords", "prepare", "row_configs_of", "generate", "run",
           "vllm_kwargs"]

log = logging.getLogger("geodata.training")

#: the columns of a part written before parts carried geodata's marker (and before the one schema)
_LEGACY_PART_COLUMNS = ("id", "task", "completion", "pred_lat", "pred_lon")
#: written into ``<out>.parts/`` so that only geodata's own partial folder is ever removed
PARTS_MARKER = ".geodata-predict-parts.json"


def parse_coords(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude read from each completion (NaN where none can be read).

    Uses geodata's coordinate parser (the one the geolocation reward and ``geodata eval``
    use), so that a prediction counts exactly when they would count it.
    """
    from geodata.tasks.geolocation.parse import parse_coords as _parse

    parsed = _parse(list(texts))
    return parsed.lat, parsed.lon


def row_configs_of(recipe: Recipe) -> list[str | None]:
    """The configs to predict: ``data.config`` as given, every config of rows for ``all``.

    For a dataset geodata built with several configs of rows (``id``, ``images``, ``prompt``)
    and no ``data.config``, an error lists them; auxiliary configs (``hotspots``,
    ``predictions``) are never predicted on. A Hub dataset's configs are left to ``datasets``.
    """
    from geodata.dataset import Dataset, DatasetError
    from geodata.validate import row_configs

    from .data import resolve_dataset

    data = recipe.data
    asked = data.configs
    loc = Path(resolve_dataset(data.dataset))
    if not (loc / "manifest.json").is_file():
        if asked == ["all"]:
            raise SpecError(f"{recipe.where}: data.config all needs a dataset geodata built; "
                            f"'{data.dataset}' is not one: name its config")
        return asked
    try:
        kinds = row_configs(Dataset.open(loc))
    except DatasetError as exc:
        raise SourceError(f"{recipe.where}: dataset '{data.dataset}': {exc}") from None
    rows = sorted(c for c, is_rows in kinds.items() if is_rows)
    if asked == ["all"]:
        return list(rows)
    if asked == [None]:
        if len(rows) > 1:
            raise SpecError(
                f"{recipe.where}: dataset '{data.dataset}' has {len(rows)} configs of rows ({', '.join(rows)}): "
                f"choose one with --config NAME (data.config), or predict them all with --config all"
            )
        return [rows[0]] if rows else [None]
    return asked


def prepare(recipe: Recipe, decode_images: bool = True) -> Any:
    """Load and check the rows to predict on (no model is loaded): ``id``, ``config``, ``task``,
    ``images`` and ``prompt``, every config of :func:`row_configs_of` in turn.

    With ``decode_images=False`` the images stay encoded (``{"bytes", "path"}``), as the
    openai engine sends them.
    """
    import datasets

    from .data import load_rows

    parts = []
    for c in row_configs_of(recipe):
        ds = load_rows(recipe.data, "predict", c, recipe.where)
        if "task" not in ds.column_names:
            ds = ds.add_column("task", [""] * len(ds))
        ds = ds.add_column("config", [c] * len(ds))
        ds = ds.select_columns(["id", "config", "task", "images", "prompt"])
        if not decode_images:
            feats = ds.features.copy()
            inner = getattr(feats["images"], "feature", None)
            if inner is not None and hasattr(inner, "decode"):
                inner.decode = False
                ds = ds.cast(feats)
        parts.append(ds)
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _chat_texts(processor: Any, prompts: Sequence[Any], images: Sequence[Any]) -> list[str]:
    from trl.data_utils import prepare_multimodal_messages

    return [
        processor.apply_chat_template(
            prepare_multimodal_messages(list(p), images=list(imgs or [])),
            tokenize=False,
            add_generation_prompt=True,
        )
        for p, imgs in zip(prompts, images)
    ]


def generate(
    model: Any,
    processor: Any,
    prompts: Sequence[Sequence[dict[str, Any]]],
    images: Sequence[Sequence[Any]],
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    return_finish_reasons: bool = False,
) -> Any:
    """Generate one completion per prompt (chat messages with image placeholders) with HF ``generate``.

    With ``return_finish_reasons``: ``(texts, reasons)``, a reason being ``stop`` when the
    model ended its answer (an end-of-sequence token) and ``length`` when ``max_new_tokens``
    cut it.
    """
    import torch

    texts = _chat_texts(processor, prompts, images)
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
    texts = processor.batch_decode(new, skip_special_tokens=True)
    if not return_finish_reasons:
        return texts
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos_ids = set([eos] if isinstance(eos, int) else (eos or []))
    reasons = [
        "stop" if eos_ids & set(row.tolist()) or row.shape[0] < max_new_tokens else "length" for row in new
    ]
    return texts, reasons


def vllm_kwargs(recipe: Recipe, processor: Any, max_images: int) -> dict[str, Any]:
    """``vllm.LLM`` arguments: the image size of ``processor`` (the recipe's) as ``mm_processor_kwargs``."""
    from .models import image_size

    min_pixels, max_pixels = image_size(processor)
    mm = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
    kwargs: dict[str, Any] = dict(
        model=recipe.model.name_or_path,
        mm_processor_kwargs=mm,
        limit_mm_per_prompt={"image": max(1, max_images)},
        gpu_memory_utilization=recipe.predict.vllm_gpu_memory_utilization,
        tensor_parallel_size=1,
        dtype="auto",
    )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # one engine per rank on its own GPU, as TRL's colocate mode starts them
        kwargs["distributed_executor_backend"] = "external_launcher"
    return kwargs


class _VLLMEngine:
    """One vLLM engine per rank, on that rank's GPU."""

    def __init__(self, recipe: Recipe, processor: Any, max_images: int, rank: int) -> None:
        from vllm import LLM

        self.processor = processor
        self.llm = LLM(**vllm_kwargs(recipe, processor, max_images), seed=rank)

    def __call__(self, prompts: Any, images: Any, *, max_new_tokens: int, do_sample: bool, temperature: float,
                 return_finish_reasons: bool = False) -> Any:
        from vllm import SamplingParams

        texts = _chat_texts(self.processor, prompts, images)
        reqs = [
            {"prompt": t, "multi_modal_data": {"image": list(imgs)}} if imgs else {"prompt": t}
            for t, imgs in zip(texts, images)
        ]
        params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0)
        outs = [o.outputs[0] for o in self.llm.generate(reqs, params, use_tqdm=False)]
        texts = [o.text for o in outs]
        # vLLM's CompletionOutput.finish_reason: "stop" or "length" (None while unfinished)
        return (texts, [getattr(o, "finish_reason", None) for o in outs]) if return_finish_reasons else texts


def _engine_name(recipe: Recipe, cuda: bool) -> str:
    e = recipe.predict.engine
    if e == "openai" or (e == "auto" and recipe.predict.base_url):
        if not recipe.predict.base_url:
            raise SpecError(f"{recipe.where}: predict.engine openai needs predict.base_url (--base-url URL)")
        return "openai"
    if recipe.predict.base_url:
        raise SpecError(f"{recipe.where}: predict.base_url is set but predict.engine is {e}: use engine openai or auto")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if e == "vllm" and not (has_vllm and cuda):
        raise SpecError(f"{recipe.where}: predict.engine vllm needs the vllm package and a CUDA GPU")
    if e == "auto":
        return "vllm" if has_vllm and cuda else "hf"
    return e


class _Dist:
    """Rank, world size and a barrier: torch.distributed (NCCL on CUDA, gloo on CPU) when
    ``WORLD_SIZE`` > 1, as set by ``accelerate launch`` and ``torchrun``."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank, self.local_rank = 0, 0
        if self.world > 1:
            import torch
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
            self.rank = dist.get_rank()
            self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    def wait(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    @property
    def device(self) -> str:
        return f"cuda:{self.local_rank}"


def _key(config: Any, rid: Any) -> str:
    return f"{config or ''}\x00{rid}"


def _read_parts(files: Sequence[Path], config: str | None = None) -> Any:
    """Partial files as one frame in the one schema (parts of an older run lack some columns;
    their rows get ``config``, the dataset's one config, where they have none)."""
    import polars as pl

    frames = [pl.read_parquet(f) for f in files]
    df = pl.concat(frames, how="diagonal_relaxed") if frames else _frame([], [], [])
    df = df.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in PREDICTION_SCHEMA.items() if c not in df.columns]
    ).select([pl.col(c).cast(t) for c, t in PREDICTION_SCHEMA.items()])
    return df.with_columns(pl.col("config").fill_null(config)) if config is not None else df


def _done_keys(parts: Path, config: str | None = None) -> set[str]:
    """Keys (config, id) of the rows already in the partial files (``config``: the dataset's one
    config, for parts written before rows carried theirs)."""
    files = _part_files(parts)
    if not files:
        return set()
    df = _read_parts(files, config)
    return {_key(c, i) for c, i in zip(df["config"].to_list(), df["id"].to_list())}


def _done_ids(parts: Path) -> set[str]:
    """Ids of the rows already in the partial files."""
    files = _part_files(parts)
    return set(_read_parts(files)["id"].to_list()) if files else set()


def _part_files(parts: Path) -> list[Path]:
    """The part files geodata wrote in ``parts``: known by the marker in their schema, or (parts of
    a run before the marker) by holding exactly the columns of a part. Other files are the user's."""
    if not parts.is_dir():
        return []
    known = (list(PREDICTION_COLUMNS), list(_LEGACY_PART_COLUMNS))
    out = []
    for f in sorted(parts.glob("*.parquet")):
        if f.is_symlink() or not f.is_file():
            continue
        if is_marked_file(f):
            out.append(f)
            continue
        try:
            if pq.read_schema(f).names in known:
                out.append(f)
        except Exception:  # noqa: BLE001 - unreadable: not a part of geodata's
            pass
    return out


def _remove_parts(parts: Path) -> None:
    """Delete the part files and the marker geodata wrote in ``parts``; the folder goes when empty."""
    for f in _part_files(parts):
        f.unlink()
    for f in parts.glob("done-*-rank*.json"):  # the openai engine's done files (ours: their two keys)
        try:
            if set(json.loads(f.read_text())) == {"failed", "error"}:
                f.unlink()
        except (OSError, ValueError):
            pass
    (parts / PARTS_MARKER).unlink(missing_ok=True)
    try:
        parts.rmdir()
    except OSError:
        log.warning("%s: kept, it holds files geodata did not write", parts)


def _frame(ids: list[str], tasks: list[str], completions: list[str], finish_reasons: list[str | None] | None = None,
           engine: str = "hf", model: str = "", configs: list[str | None] | str | None = None) -> Any:
    """Predictions of one batch in the one schema."""
    return prediction_table(ids, [t or None for t in tasks], completions, finish_reasons, engine, model, configs)


def _check_parts(parts: Path) -> None:
    if parts.exists() and not (parts / PARTS_MARKER).is_file():
        raise BuildError(f"{parts} exists and was not written by geodata (no {PARTS_MARKER}); not touched")


def _messages_parts(prompt: Sequence[dict[str, Any]]) -> tuple[str | None, str]:
    """``(system text, user text)`` of a chat prompt (the last user turn's text parts)."""
    system, user = None, ""
    for msg in prompt:
        content = msg.get("content")
        texts = [content] if isinstance(content, str) else [
            c.get("text") or "" for c in content or [] if isinstance(c, dict) and c.get("type") == "text"
        ]
        if msg.get("role") == "system":
            system = " ".join(t for t in texts if t)
        elif msg.get("role") == "user":
            user = " ".join(t for t in texts if t)
    return system, user


class _OpenAIEngine:
    """Requests to an OpenAI-compatible endpoint through geodata's cached, resumable client."""

    def __init__(self, recipe: Recipe) -> None:
        from geodata.inference import Endpoint

        p = recipe.predict
        try:
            self.ep = Endpoint(
                base_url=str(p.base_url), model=recipe.model.name_or_path, api_key_env=p.api_key_env,
                temperature=p.temperature if p.do_sample else 0.0, max_tokens=p.max_new_tokens,
                concurrency=p.concurrency, timeout=p.timeout, max_retries=p.max_retries,
            )
        except SpecError as exc:
            raise SpecError(f"{recipe.where}: predict: {exc}") from None
        self.max_failed_fraction = p.max_failed_fraction
        self.model = recipe.model.name_or_path
        self.stats: list[Any] = []
        self.skipped: dict[str, int] = {}

    def __call__(self, prompts: Any, images: Any, **_: Any) -> tuple[list[str | None], list[str | None], list[str]]:
        """``(texts, finish reasons, errors)``; a failed request has text None and its error."""
        from geodata.inference import ChatRequest, chat

        reqs = []
        for prompt, imgs in zip(prompts, images):
            system, text = _messages_parts(prompt)
            blobs = tuple(im["bytes"] if isinstance(im, dict) and im.get("bytes") else im["path"]
                          for im in imgs or [])
            reqs.append(ChatRequest(text=text, images=blobs, system=system))
        results, stats = chat(reqs, self.ep, label="predict")
        self.model = stats.model or self.model
        self.stats.append(stats)
        for reason, n in stats.skipped.items():  # never sent: an image fails the decode check (a counted drop)
            self.skipped[reason] = self.skipped.get(reason, 0) + n
        return ([r.text for r in results], [r.finish_reason for r in results],
                ["" if r.skipped else r.error or "" for r in results])


def _rank_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from the environment ``accelerate launch`` and ``torchrun`` set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
    if world < 1 or not 0 <= rank < world:
        raise SpecError(f"RANK={rank} and WORLD_SIZE={world} from the environment do not fit together")
    return rank, world


def _run_id() -> str:
    """One value shared by every rank of a launch (torchrun's run id, else the rendezvous port)."""
    return os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("MASTER_PORT") or "local"


def _done_file(parts: Path, rank: int) -> Path:
    return parts / f"done-{_run_id()}-rank{rank:05d}.json"


def _wait_done(parts: Path, world: int, timeout_s: float) -> set[str]:
    """Rank 0 of the openai engine (no torch barrier): wait for every rank's done file; the keys
    of the rows whose requests failed within the accepted share; a rank's error is raised."""
    t0 = time.monotonic()
    failed: set[str] = set()
    for r in range(world):
        f = _done_file(parts, r)
        while not f.is_file():
            if time.monotonic() - t0 > timeout_s:
                raise BuildError(f"{parts}: rank {r} did not finish within {timeout_s:.0f} s; rerun to resume")
            time.sleep(0.2)
        info = json.loads(f.read_text())
        if info.get("error"):
            raise BuildError(f"rank {r}: {info['error']}")
        failed.update(info.get("failed", []))
    return failed


def run(recipe: Recipe | str | Path, sets: Iterable[str] = (), out: Path | None = None) -> Path:
    """Predict over the recipe's ``data`` with its ``model``; write the predictions Parquet.

    Data-parallel under ``accelerate launch`` (each rank its shard, one merged file) and
    resumable (rows already in ``<out>.parts/`` are skipped).

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
    p = recipe.predict
    engine = _engine_name(recipe, cuda=False) if p.base_url or p.engine == "openai" else None
    rows = prepare(recipe, decode_images=engine != "openai")

    out = Path(out or p.output or recipe.output_dir / "predictions.parquet")
    check_out_file(out)  # never overwrite a file geodata did not write
    all_keys = [_key(c, i) for c, i in zip(rows["config"], rows["id"])]
    if len(set(all_keys)) != len(all_keys):
        seen: set[str] = set()
        dup = next(k for k in all_keys if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        c, _, i = dup.partition("\x00")
        raise SourceError(f"{recipe.where}: dataset '{recipe.data.dataset}'{f' config {c!r}' if c else ''}: "
                          f"id '{i}' occurs more than once")
    parts = out.with_name(out.name + ".parts")
    dist: _Dist | None = None
    if engine == "openai":  # no torch: rank and world size from the environment
        rank, world = _rank_world()
        if rank == 0:
            _check_parts(parts)
            parts.mkdir(parents=True, exist_ok=True)
            (parts / PARTS_MARKER).write_text(json.dumps({"output": str(out)}) + "\n")
        else:
            t0 = time.monotonic()
            while not (parts / PARTS_MARKER).is_file() and time.monotonic() - t0 < 120:
                time.sleep(0.2)
            _check_parts(parts)
    else:
        dist = _Dist()
        rank, world = dist.rank, dist.world
        if rank == 0:
            _check_parts(parts)
            parts.mkdir(parents=True, exist_ok=True)
            (parts / PARTS_MARKER).write_text(json.dumps({"output": str(out)}) + "\n")
        dist.wait()
    configs = set(rows["config"])
    single = next(iter(configs)) if len(configs) == 1 else None
    done = _done_keys(parts, single)
    mine = [i for i in range(rank, len(rows), world) if all_keys[i] not in done]

    model_name = recipe.model.name_or_path
    if engine == "openai":
        gen: Any = _OpenAIEngine(recipe)
        batch_size = max(p.batch_size, p.concurrency * 4)
    else:
        from .models import device_settings, load_model, load_processor

        settings = device_settings(recipe.model, recipe.where, for_training=False)
        processor = load_processor(recipe.model, padding_side="left")
        engine = _engine_name(recipe, settings.cuda)
        if engine == "vllm":
            max_images = max((len(x or []) for x in rows.select_columns(["images"])["images"]), default=1)
            gen = _VLLMEngine(recipe, processor, max_images, rank)
            batch_size = max(p.batch_size, 256)
        else:
            model = load_model(recipe.model, settings, for_training=False)
            if settings.cuda:
                assert dist is not None
                model = model.to(dist.device)
            model.eval()
            gen = lambda *a, **k: generate(model, processor, *a, **k)  # noqa: E731
            batch_size = p.batch_size
    log.info("predict %s: rank %d/%d, %d rows to do (%d done before), engine %s", recipe.name, rank, world,
             len(mine), len(done), engine)

    t0 = time.perf_counter()
    n_images = 0
    failed: list[str] = []  # errors of requests that failed
    failed_keys: list[str] = []
    sent = 0
    buf: list[Any] = []
    for b, start in enumerate(range(0, len(mine), batch_size)):
        idx = mine[start : start + batch_size]
        batch = rows.select(idx)
        res = gen(
            batch["prompt"],
            batch["images"],
            max_new_tokens=p.max_new_tokens,
            do_sample=p.do_sample,
            temperature=p.temperature,
            return_finish_reasons=True,
        )
        if isinstance(res, tuple):
            texts, reasons = res[0], res[1]
            errors = res[2] if len(res) > 2 else [""] * len(texts)
        else:  # a plain list of texts
            texts, reasons, errors = res, [None] * len(res), [""] * len(res)
        keep = [t is not None for t in texts]
        sent += len(texts)
        failed += [e for e in errors if e]
        failed_keys += [all_keys[i] for i, k in zip(idx, keep) if not k]
        n_images += sum(len(x or []) for x, k in zip(batch["images"], keep) if k)
        pick = lambda col: [v for v, k in zip(col, keep) if k]  # noqa: E731
        buf.append(_frame(pick([str(i) for i in batch["id"]]), pick([str(t) for t in batch["task"]]),
                          pick(texts), pick(reasons), str(engine),
                          getattr(gen, "model", model_name), pick(batch["config"])))
        if (b + 1) % p.save_every == 0 or start + batch_size >= len(mine):
            part = pl.concat(buf)
            if part.height:
                pq.write_table(mark_table(part.to_arrow()), parts / f"rank{rank:05d}-{time.time_ns()}.parquet")
            buf = []
    dt = time.perf_counter() - t0
    print(f"predict {recipe.name}: rank {rank}/{world}: {len(mine)} rows, {n_images} images in {dt:.1f} s "
          f"({n_images / dt if dt > 0 else 0.0:.2f} images/s)", flush=True)
    error = None
    skipped = getattr(gen, "skipped", {})
    if skipped:
        print(f"predict {recipe.name}: rank {rank}: {sum(skipped.values())} rows not sent, left out of {out}: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())), flush=True)
    if failed:
        stats = getattr(gen, "stats", [])
        cause = "; ".join(s.cause() for s in stats if s.failed) or failed[0]
        msg = (f"predict {recipe.name}: rank {rank}: {len(failed)} of {sent} requests failed: {cause}. "
               f"The answers that arrived are kept (in {parts} and the response cache): rerun the same command "
               f"to send only the failed ones")
        if len(failed) > p.max_failed_fraction * sent:
            error = msg + (f" (or accept failures with --set predict.max_failed_fraction="
                           f"{min(1.0, round(len(failed) / sent + 0.005, 2)):g})")
        else:
            log.warning("%s", msg)
            print(f"warning: {msg}; their rows are left out of {out}", flush=True)
    if dist is None:  # the openai engine: a done file per rank instead of a torch barrier
        _done_file(parts, rank).write_text(json.dumps({"failed": failed_keys, "error": error}) + "\n")
    if error is not None:
        raise BuildError(error)
    if dist is not None:
        dist.wait()
    if rank == 0:
        skip: set[str] = set()
        if dist is None:
            skip = _wait_done(parts, world, float(os.environ.get("GEODATA_PREDICT_WAIT_S", "86400")))
        files = _part_files(parts)
        df = _read_parts(files, single).unique(["config", "id"], keep="first", maintain_order=True)
        order = pl.DataFrame({"config": rows["config"], "id": [str(i) for i in rows["id"]],
                              "_i": np.arange(len(all_keys))},
                             schema={"config": pl.String, "id": pl.String, "_i": pl.Int64})
        df = order.join(df, on=["config", "id"], how="inner", nulls_equal=True).sort("_i").drop("_i")
        df = df.select(list(PREDICTION_COLUMNS))
        want = len(all_keys) - len(skip)
        if df.height != want:
            raise BuildError(f"{parts}: {df.height} predictions for {want} rows; rerun to resume")
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(mark_table(df.to_arrow()), out)
        _remove_parts(parts)
        wall = time.perf_counter() - t0
        new = [i for i, k in enumerate(all_keys) if k not in done]
        total = sum(len(x or []) for x in rows.select(new).select_columns(["images"])["images"])
        unparsed = int((~df["parsed"]).sum())
        truncated = int((df["finish_reason"] == "length").sum())
        print(f"predict {recipe.name}: wrote {out}: {df.height} rows ({len(done)} from an earlier run"
              + (f", {len(skip)} left out: failed requests or images that do not decode" if skip else "")
              + f"), {world} rank(s), engine {engine}, {total / wall if wall > 0 else 0.0:.2f} images/s overall; "
              f"{unparsed} unparsed, {truncated} cut by max_new_tokens", flush=True)
        if df.height and unparsed == df.height:
            print(f"warning: predict {recipe.name}: none of the {df.height} answers could be parsed", flush=True)
    if dist is not None:
        dist.wait()
    return out
