"""Run controls on CPU with the tiny model: resume a killed run, mixed precision, processors
that reload with AutoProcessor, predict sharded over 2 processes, GRPO stages as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

import datasets  # noqa: E402
import polars as pl  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoProcessor, TrainerCallback  # noqa: E402
from transformers.processing_utils import ProcessorMixin  # noqa: E402

from geodata_train import grpo, predict, sft  # noqa: E402
from geodata_train.models import has_stock_processor, image_size, load_processor  # noqa: E402
from geodata_train.recipe import ModelSpec, load_recipe  # noqa: E402
from geodata_train.tiny import write_model  # noqa: E402

from training_fixtures import FAST, StopAfter, mp16_rows, tiny_model  # noqa: E402,F401

pytestmark = pytest.mark.train
REPO = Path(__file__).resolve().parent.parent


class Steps(TrainerCallback):
    def __init__(self) -> None:
        self.begin: int | None = None
        self.steps: list[int] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.begin = state.global_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.steps.append(state.global_step)


def _sft_sets(tiny: Path, data: Path, out: Path, *more: str) -> list[str]:
    return [
        f"model.name_or_path={tiny}",
        f"data.dataset={data}",
        f"train.output_dir={out}",
        "train.per_device_train_batch_size=2",
        *FAST,
        *more,
    ]


# -- resume ------------------------------------------------------------------------------------
def test_resume_continues_a_killed_sft_run(tiny_model: Path, mp16_rows: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft"
    sets = _sft_sets(tiny_model, mp16_rows, out, "train.max_steps=5", "train.save_steps=2", "train.learning_rate=1e-3")
    with pytest.raises(KeyboardInterrupt, match="killed after step 3"):
        sft.run("geo-r-sft", sets, callbacks=[StopAfter(3)])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not (out / "model.safetensors").exists()

    rec = Steps()
    sft.run("geo-r-sft", [*sets, "train.resume_from_checkpoint=last"], callbacks=[rec])
    assert rec.begin == 2 and rec.steps == [3, 4, 5]
    state = json.loads((out / "checkpoint-5" / "trainer_state.json").read_text())
    assert state["global_step"] == 5 and state["max_steps"] == 5
    # the saved folders reload with the stock AutoProcessor path (what vLLM / lmms-eval use)
    for folder in (out, out / "checkpoint-5"):
        proc = AutoProcessor.from_pretrained(folder) if has_stock_processor() else load_processor(ModelSpec(name_or_path=str(folder)))
        assert isinstance(proc, ProcessorMixin) and hasattr(proc, "image_processor")


# -- mixed precision ---------------------------------------------------------------------------
def test_bf16_autocast_keeps_fp32_master_weights_and_small_updates(
    tiny_model: Path, mp16_rows: Path, tmp_path: Path
) -> None:
    out = sft.run(
        "geo-r-sft",
        _sft_sets(tiny_model, mp16_rows, tmp_path / "bf16", "train.max_steps=1", "train.learning_rate=1e-6",
                  "train.bf16=true", "train.lr_scheduler_type=constant", "train.max_grad_norm=1e9"),
    )
    before, after = load_file(str(tiny_model / "model.safetensors")), load_file(str(out / "model.safetensors"))
    keys = [k for k in before if k.startswith("model.layers.") and k.endswith(".weight") and before[k].ndim == 2]
    assert keys
    assert all(after[k].dtype == torch.float32 for k in keys)  # weights stay fp32 under bf16 autocast
    changed = sum(int((after[k] != before[k]).sum()) for k in keys)
    kept_in_bf16 = sum(int((after[k].bfloat16() != before[k].bfloat16()).sum()) for k in keys)
    total = sum(before[k].numel() for k in keys)
    assert changed > 0.9 * total  # an lr 1e-6 step moves (almost) every fp32 weight ...
    assert kept_in_bf16 < 0.1 * total  # ... which bf16 weights would have rounded away


# -- processors --------------------------------------------------------------------------------
def test_image_only_fallback_saves_a_stock_processor(tmp_path: Path, mp16_rows: Path) -> None:
    folder = write_model(tmp_path / "fallback", stock=False)
    cfg = json.loads((folder / "processor_config.json").read_text())
    assert cfg["processor_class"] == "Qwen2_5_VLProcessor"
    assert cfg["video_processor"]["video_processor_type"] == "Qwen2VLVideoProcessor"
    assert cfg["video_processor"]["size"] == cfg["image_processor"]["size"]
    ours = load_processor(ModelSpec(name_or_path=str(folder)))
    row = datasets.load_dataset(str(mp16_rows), split="train")[0]
    text = ours.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    n = lambda p: int((p(text=[text], images=[row["images"]], return_tensors="pt")["input_ids"] == p.image_token_id).sum())  # noqa: E731
    if not has_stock_processor():
        pytest.skip("AutoProcessor needs torchvision for Qwen2.5-VL")
    stock = AutoProcessor.from_pretrained(folder)
    assert type(stock).__name__ == "Qwen2_5_VLProcessor"
    assert n(stock) == n(ours) == 4 and image_size(stock) == image_size(ours) == (3136, 3136)


@pytest.mark.skipif(not has_stock_processor(), reason="the stock processor needs torchvision")
def test_stock_processor_is_used_with_torchvision(tiny_model: Path) -> None:
    proc = load_processor(ModelSpec(name_or_path=str(tiny_model), min_pixels=3136, max_pixels=6272))
    assert type(proc).__name__ == "Qwen2_5_VLProcessor" and proc.video_processor is not None
    assert image_size(proc) == (3136, 6272) and image_size(proc.video_processor) == (3136, 6272)


# -- predict at scale --------------------------------------------------------------------------
def test_predict_shards_over_two_processes_into_one_resumable_output(
    tiny_model: Path, mp16_rows: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds.parquet"
    parts = tmp_path / "preds.parquet.parts"
    ids = [str(i) for i in datasets.load_dataset(str(mp16_rows), split="train")["id"][:6]]
    # a partial output of an earlier, interrupted run: its id is not predicted again
    parts.mkdir()
    (parts / predict.PARTS_MARKER).write_text("{}")
    predict._frame([ids[4]], ["geolocation"], ["from before"]).write_parquet(parts / "rank00000-1.parquet")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [
        # torchrun = what accelerate launch runs on GPUs; on CPU accelerate's own multi-CPU path needs MPI
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "geodata_train", "predict", "mp16-predict",
        "--model", str(tiny_model), "--dataset", str(mp16_rows), "--out", str(out),
        "--set", "data.max_rows=6", "--set", "predict.max_new_tokens=4", "--set", "predict.batch_size=2",
        "--set", "model.max_pixels=3136",
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # rows 0, 2, 4 are rank 0's and 1, 3, 5 rank 1's; row 4 was done before
    assert "rank 0/2: 2 rows" in res.stdout and "rank 1/2: 3 rows" in res.stdout
    assert "images/s overall" in res.stdout
    df = pl.read_parquet(out)
    assert df["id"].to_list() == ids and df.columns == list(predict.PREDICTION_COLUMNS)
    assert df.filter(pl.col("id") == ids[4])["completion"].to_list() == ["from before"]
    assert not parts.exists()


# -- GRPO stages as processes -------------------------------------------------------------------
def _two_configs(src: Path, out: Path) -> Path:
    ds = datasets.load_dataset(str(src), split="train")
    for name, sl in (("a", range(0, 2)), ("b", range(2, 4))):
        (out / name).mkdir(parents=True)
        ds.select(sl).to_parquet(str(out / name / "train-00000-of-00001.parquet"))
    cfgs = "".join(
        f"- config_name: {n}\n  data_files:\n  - split: train\n    path: {n}/train-*.parquet\n" for n in "ab"
    )
    (out / "README.md").write_text(f"---\nconfigs:\n{cfgs}---\n")
    return out


def test_stage_command_runs_the_module_from_the_previous_stage(tmp_path: Path) -> None:
    r = load_recipe("geovlm-r1-grpo", ["grpo.stage_launcher=accelerate launch --num_processes 8", "train.max_steps=3"])
    cmd = grpo._stage_command(r, ["train.max_steps=3", "data.config=[x]"], "vqa", "runs/a/scene_cls",
                              Path("runs/a/vqa"), resume=True, reference="base-model")
    assert cmd[:5] == ["accelerate", "launch", "--num_processes", "8", "-m"] and cmd[5:7] == ["geodata_train", "grpo"]
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets == ["train.max_steps=3", "data.config=vqa", "model.name_or_path=runs/a/scene_cls",
                    "train.output_dir=runs/a/vqa", "grpo.reference_model=base-model", "train.resume_from_checkpoint=last"]


def test_multi_stage_grpo_runs_each_stage_as_a_process_and_resumes(
    tiny_model: Path, mp16_rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _two_configs(mp16_rows, tmp_path / "two")
    out = tmp_path / "grpo"
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    sets = [
        f"model.name_or_path={tiny_model}", f"data.dataset={data}", "data.config=[a, b]",
        f"train.output_dir={out}", "train.max_steps=1", "train.per_device_train_batch_size=2",
        "grpo.num_generations=2", "grpo.max_completion_length=8", "grpo.reference=base", *FAST,
    ]
    assert grpo.run("geo-r-grpo", sets) == out
    for stage in ("a", "b"):
        marker = json.loads((out / stage / grpo.STAGE_MARKER).read_text())
        assert marker["stage"] == stage and (out / stage / "model.safetensors").is_file()
    assert json.loads((out / "b" / grpo.STAGE_MARKER).read_text())["started_from"] == str(out / "a")
    # stage b's KL reference (and vLLM's model folder) is the base model with the trainer's processor
    linked = json.loads((out / "b" / ".geodata" / "policy" / grpo.LINK_MARKER).read_text())
    assert linked["linked_from"] == str(tiny_model.resolve())
    assert (out / "model.safetensors").read_bytes() == (out / "b" / "model.safetensors").read_bytes()
    # a rerun finds both stages done and starts no process
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("a finished stage was rerun"))
    assert grpo.run("geo-r-grpo", sets) == out
