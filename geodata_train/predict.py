"""Batch generation over a dataset, written as a predictions Parquet file.

Columns: ``id``, ``task``, ``completion`` (the generated text) and, for rows whose task is
``geolocation``, ``pred_lat`` / ``pred_lon`` parsed from the completion (null where no
coordinate can be read). The Hard-200K pipeline and ``geodata eval`` read this file.

At scale: under ``accelerate launch`` (or ``torchrun``) each of the ``world_size`` ranks
predicts the rows whose index modulo ``world_size`` is its rank, writing partial files into
``<out>.parts/`` every ``predict.save_every`` batches; when all ranks are done, rank 0 merges
them into ``<out>`` (in dataset order) and removes the parts. A rerun after a crash skips the
ids already in the partial files, whatever the world size was. With vLLM installed and CUDA
present, ``predict.engine: auto`` generates with a vLLM engine (one per rank) whose image size
(``mm_processor_kwargs``) is the recipe's, as with the HF processor. Throughput (images/s) is
printed per rank and overall.
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

from .recipe import Recipe, load_recipe

__all__ = ["PREDICTION_COLUMNS", "PARTS_MARKER", "parse_coords", "prepare", "generate", "run", "vllm_kwargs"]

log = logging.getLogger("geodata.training")

PREDICTION_COLUMNS: tuple[str, ...] = ("id", "task", "completion", "pred_lat", "pred_lon")
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


def prepare(recipe: Recipe) -> Any:
    """Load and check the rows to predict on (no model is loaded)."""
    import datasets

    from .data import load_rows

    parts = [load_rows(recipe.data, "predict", c, recipe.where) for c in recipe.data.configs]
    ds = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if "task" not in ds.column_names:
        ds = ds.add_column("task", [""] * len(ds))
    return ds.select_columns(["id", "task", "images", "prompt"])


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
) -> list[str]:
    """Generate one completion per prompt (chat messages with image placeholders) with HF ``generate``."""
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
    return processor.batch_decode(new, skip_special_tokens=True)


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

    def __call__(self, prompts: Any, images: Any, *, max_new_tokens: int, do_sample: bool, temperature: float) -> list[str]:
        from vllm import SamplingParams

        texts = _chat_texts(self.processor, prompts, images)
        reqs = [
            {"prompt": t, "multi_modal_data": {"image": list(imgs)}} if imgs else {"prompt": t}
            for t, imgs in zip(texts, images)
        ]
        params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0)
        return [o.outputs[0].text for o in self.llm.generate(reqs, params, use_tqdm=False)]


def _engine_name(recipe: Recipe, cuda: bool) -> str:
    e = recipe.predict.engine
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


def _done_ids(parts: Path) -> set[str]:
    import polars as pl

    files = _part_files(parts)
    if not files:
        return set()
    return set(pl.read_parquet(files, columns=["id"])["id"].to_list())


def _part_files(parts: Path) -> list[Path]:
    """The part files geodata wrote in ``parts``: known by the marker in their schema, or (parts of
    a run before the marker) by holding exactly the columns of a part. Other files are the user's."""
    if not parts.is_dir():
        return []
    cols = _frame([], [], []).columns
    out = []
    for f in sorted(parts.glob("*.parquet")):
        if f.is_symlink() or not f.is_file():
            continue
        if is_marked_file(f):
            out.append(f)
            continue
        try:
            if pq.read_schema(f).names == cols:
                out.append(f)
        except Exception:  # noqa: BLE001 - unreadable: not a part of geodata's
            pass
    return out


def _remove_parts(parts: Path) -> None:
    """Delete the part files and the marker geodata wrote in ``parts``; the folder goes when empty."""
    for f in _part_files(parts):
        f.unlink()
    (parts / PARTS_MARKER).unlink(missing_ok=True)
    try:
        parts.rmdir()
    except OSError:
        log.warning("%s: kept, it holds files geodata did not write", parts)


def _frame(ids: list[str], tasks: list[str], completions: list[str]) -> Any:
    import polars as pl

    lat = np.full(len(ids), np.nan)
    lon = np.full(len(ids), np.nan)
    geo = [i for i, t in enumerate(tasks) if t == "geolocation"]
    if geo:
        glat, glon = parse_coords([completions[i] for i in geo])
        lat[geo], lon[geo] = glat, glon
    return pl.DataFrame(
        {"id": ids, "task": tasks, "completion": completions, "pred_lat": lat, "pred_lon": lon},
        schema={"id": pl.String, "task": pl.String, "completion": pl.String, "pred_lat": pl.Float64, "pred_lon": pl.Float64},
    ).with_columns(pl.col("pred_lat", "pred_lon").fill_nan(None))


def _check_parts(parts: Path) -> None:
    if parts.exists() and not (parts / PARTS_MARKER).is_file():
        raise BuildError(f"{parts} exists and was not written by geodata (no {PARTS_MARKER}); not touched")


def run(recipe: Recipe | str | Path, sets: Iterable[str] = (), out: Path | None = None) -> Path:
    """Predict over the recipe's ``data`` with its ``model``; write the predictions Parquet.

    Data-parallel under ``accelerate launch`` (each rank its shard, one merged file) and
    resumable (ids already in ``<out>.parts/`` are skipped).

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
    check_out_file(out)  # never overwrite a file geodata did not write
    all_ids = [str(i) for i in rows["id"]]
    if len(set(all_ids)) != len(all_ids):
        dup = next(i for i in all_ids if all_ids.count(i) > 1)
        raise SourceError(f"{recipe.where}: dataset '{recipe.data.dataset}': id '{dup}' occurs more than once")
    dist = _Dist()
    rank, world = dist.rank, dist.world
    parts = out.with_name(out.name + ".parts")
    if rank == 0:
        _check_parts(parts)
        parts.mkdir(parents=True, exist_ok=True)
        (parts / PARTS_MARKER).write_text(json.dumps({"output": str(out)}) + "\n")
    dist.wait()
    done = _done_ids(parts)
    mine = [i for i in range(rank, len(rows), world) if all_ids[i] not in done]

    settings = device_settings(recipe.model, recipe.where, for_training=False)
    processor = load_processor(recipe.model, padding_side="left")
    engine = _engine_name(recipe, settings.cuda)
    if engine == "vllm":
        max_images = max((len(x or []) for x in rows.select_columns(["images"])["images"]), default=1)
        gen: Any = _VLLMEngine(recipe, processor, max_images, rank)
        batch_size = max(p.batch_size, 256)
    else:
        model = load_model(recipe.model, settings, for_training=False)
        if settings.cuda:
            model = model.to(dist.device)
        model.eval()
        gen = lambda *a, **k: generate(model, processor, *a, **k)  # noqa: E731
        batch_size = p.batch_size
    log.info("predict %s: rank %d/%d, %d rows to do (%d done before), engine %s", recipe.name, rank, world, len(mine), len(done), engine)

    t0 = time.perf_counter()
    n_images = 0
    buf: tuple[list[str], list[str], list[str]] = ([], [], [])
    for b, start in enumerate(range(0, len(mine), batch_size)):
        batch = rows.select(mine[start : start + batch_size])
        texts = gen(
            batch["prompt"],
            batch["images"],
            max_new_tokens=p.max_new_tokens,
            do_sample=p.do_sample,
            temperature=p.temperature,
        )
        n_images += sum(len(x or []) for x in batch["images"])
        buf[0].extend(str(i) for i in batch["id"])
        buf[1].extend(str(t) for t in batch["task"])
        buf[2].extend(texts)
        if (b + 1) % p.save_every == 0 or start + batch_size >= len(mine):
            pq.write_table(mark_table(_frame(*buf).to_arrow()), parts / f"rank{rank:05d}-{time.time_ns()}.parquet")
            buf = ([], [], [])
    dt = time.perf_counter() - t0
    print(f"predict {recipe.name}: rank {rank}/{world}: {len(mine)} rows, {n_images} images in {dt:.1f} s "
          f"({n_images / dt if dt > 0 else 0.0:.2f} images/s)", flush=True)
    dist.wait()
    if rank == 0:
        files = _part_files(parts)
        df = pl.read_parquet(files) if files else _frame([], [], [])
        df = df.unique("id", keep="first")
        order = pl.DataFrame({"id": all_ids, "_i": np.arange(len(all_ids))})
        df = order.join(df, on="id", how="inner").sort("_i").drop("_i").select(list(PREDICTION_COLUMNS))
        if df.height != len(all_ids):
            raise BuildError(f"{parts}: {df.height} predictions for {len(all_ids)} rows; rerun to resume")
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(mark_table(df.to_arrow()), out)
        _remove_parts(parts)
        wall = time.perf_counter() - t0
        new = [i for i, rid in enumerate(all_ids) if rid not in done]
        total = sum(len(x or []) for x in rows.select(new).select_columns(["images"])["images"])
        print(f"predict {recipe.name}: wrote {out}: {df.height} rows ({len(done)} from an earlier run), "
              f"{world} rank(s), {total / wall if wall > 0 else 0.0:.2f} images/s overall", flush=True)
    dist.wait()
    return out
