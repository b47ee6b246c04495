"""GPU check (issue 22, item 6): one script, about 8 minutes on one H100, prints the figures to record.

    make gpu-check                  # or: .venv/bin/python benchmarks/gpu_check.py [--out runs/gpu-check]

On one CUDA GPU, with a random-init Qwen2.5-VL-3B in bf16 (``geodata train tiny-model --preset 3b``;
nothing downloaded) and the embedded samples:

1. SFT steps on MP16-Rand-500K rows: tokens/s and peak GPU memory;
2. GRPO steps on MP16-Hard-200K rows with the distance x format reward, without vLLM and (when
   vLLM is installed) with vLLM in colocate mode: seconds per step, peak memory;
3. ``geodata predict`` with the vLLM engine over ``bench-im2gps3k``: images/s.

Without CUDA it stops at once with one line saying so (exit 2). ``--smoke`` runs the same phases
on a CPU with the tiny model and tiny settings (vLLM phases skipped): the plumbing check a
session without a GPU can make. Each phase prints one
``RESULT`` line; a failing phase prints ``FAILED`` with the reason and the rest still run.
Record the RESULT lines with the card's name (printed first) in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BUDGET_S = 8 * 60


def _need_cuda() -> Any:
    try:
        import torch
    except ImportError:
        sys.exit("gpu-check: torch is not installed (make install-train)")
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device is visible (torch.cuda.is_available() is False): this check needs one "
              "NVIDIA GPU (e.g. an H100); nothing was run", file=sys.stderr)
        sys.exit(2)
    return torch


class _Clock:
    """TrainerCallback recording step times and the trainer's logged token counts."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class CB(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if clock.t0 is None:
                    clock.t0 = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                clock.steps.append(time.perf_counter())

            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
                if logs and "num_tokens" in logs:
                    clock.tokens.append((time.perf_counter(), float(logs["num_tokens"])))

        self.t0: float | None = None
        self.steps: list[float] = []
        self.tokens: list[tuple[float, float]] = []
        self.callback = CB()

    def per_step(self, skip: int = 1) -> float | None:
        s = self.steps[skip:] if len(self.steps) > skip + 1 else self.steps
        return (s[-1] - s[0]) / (len(s) - 1) if len(s) > 1 else None

    def tokens_per_s(self) -> float | None:
        if len(self.tokens) < 2:
            return None
        (t0, n0), (t1, n1) = self.tokens[1], self.tokens[-1]  # the first log includes warm-up
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def _result(name: str, **kv: Any) -> None:
    print("RESULT " + json.dumps({"phase": name, **kv}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/gpu-check"))
    ap.add_argument("--sft-steps", type=int, default=12)
    ap.add_argument("--grpo-steps", type=int, default=4)
    ap.add_argument("--predict-rows", type=int, default=24)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny model, tiny settings: check the script runs")
    args = ap.parse_args()
    if args.smoke:
        import torch

        args.sft_steps, args.grpo_steps, args.predict_rows = 4, 2, 4
    else:
        torch = _need_cuda()
    cuda = torch.cuda.is_available()

    def peak() -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    start = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = (f"{torch.cuda.get_device_name(0)} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)"
            if cuda else "CPU (smoke run: tiny model, figures meaningless)")
    print(f"device: {name}, "
          f"torch {torch.__version__}, vllm {'installed' if importlib.util.find_spec('vllm') else 'not installed'}", flush=True)

    from geodata.engine import build
    from geodata_train import grpo, predict, sft
    from geodata_train.tiny import write_model

    out = args.out
    model = out / "qwen2.5-vl-3b-random"
    if args.smoke:
        model = out / "tiny-random"
    if not (model / "config.json").is_file():
        write_model(model, preset="tiny" if args.smoke else "3b", seed=0, dtype="float32" if args.smoke else "bfloat16")
    rand = build("mp16-rand-500k", sets=["sample.n=512"], out=out / "data" / "rand").path
    hard = build("mp16-hard-200k", sets=["sample.n=256"], out=out / "data" / "hard").path
    bench = build("bench-im2gps3k", out=out / "data" / "bench-im2gps3k").path
    common = [f"model.name_or_path={model}", "train.logging_steps=1", "train.save_steps=100000",
              "train.warmup_steps=0", "train.report_to=[]"]
    common += (["train.gradient_checkpointing=false", "model.max_pixels=3136"] if args.smoke
               else ["train.bf16=true", "train.gradient_checkpointing=true"])
    gen = ["grpo.num_generations=2", "grpo.max_completion_length=8", "train.per_device_train_batch_size=2"] if args.smoke \
        else ["grpo.num_generations=8", "grpo.max_completion_length=256", "train.per_device_train_batch_size=8"]

    def phase(name: str, fn: Any) -> None:
        left = BUDGET_S - (time.perf_counter() - start)
        if left < 45:
            print(f"SKIPPED {name}: {left:.0f} s of the {BUDGET_S} s budget left", flush=True)
            return
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            fn()
        except Exception as exc:  # one phase failing must not hide the others' figures
            print(f"FAILED {name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
        finally:
            if cuda:
                torch.cuda.empty_cache()

    def run_sft() -> None:
        c = _Clock()
        sft.run("geo-r-sft", [*common, f"data.dataset={rand}", f"train.output_dir={out / 'sft'}",
                              f"train.max_steps={args.sft_steps}", "train.per_device_train_batch_size=4",
                              "train.gradient_accumulation_steps=1"], callbacks=[c.callback])
        _result("sft", steps=args.sft_steps, batch=4, s_per_step=c.per_step(), tokens_per_s=c.tokens_per_s(),
                peak_gib=peak())

    def run_grpo(vllm: bool) -> None:
        c = _Clock()
        grpo.run("geo-r-grpo", [*common, f"data.dataset={hard}", f"train.output_dir={out / ('grpo-vllm' if vllm else 'grpo')}",
                                f"train.max_steps={args.grpo_steps}", "train.gradient_accumulation_steps=1", *gen,
                                f"grpo.use_vllm={'true' if vllm else 'false'}",
                                *(["grpo.vllm_mode=colocate"] if vllm else [])], callbacks=[c.callback])
        _result("grpo-vllm" if vllm else "grpo", steps=args.grpo_steps, settings=gen, s_per_step=c.per_step(), peak_gib=peak())

    def run_predict(engine: str = "vllm") -> None:
        t0 = time.perf_counter()
        p = predict.run("mp16-predict", [f"model.name_or_path={model}", f"data.dataset={bench}", "data.split=test",
                                         f"data.max_rows={args.predict_rows}", f"predict.engine={engine}",
                                         f"predict.max_new_tokens={8 if args.smoke else 128}",
                                         *(["model.max_pixels=3136"] if args.smoke else [])], out=out / "predict" / "predictions.parquet")
        dt = time.perf_counter() - t0
        _result(f"predict-{engine}", rows=args.predict_rows, seconds_incl_engine_start=dt,
                images_per_s=args.predict_rows / dt, file=str(p))

    phase("sft", run_sft)
    phase("grpo", lambda: run_grpo(False))
    if importlib.util.find_spec("vllm") and cuda:
        phase("grpo-vllm", lambda: run_grpo(True))
        phase("predict-vllm", run_predict)
    else:
        print("SKIPPED grpo-vllm, predict-vllm: " + ("vllm is not installed (make install-vllm)" if cuda else "no CUDA"), flush=True)
        if args.smoke:
            phase("predict-hf", lambda: run_predict("hf"))
    print(f"gpu-check: {time.perf_counter() - start:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
