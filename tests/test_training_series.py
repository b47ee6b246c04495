"""Image sequences in training (issue 23 item 4): a 4-frame time-series row, a pre / post pair and a
one-image row through the Qwen2.5-VL chat template and collator (one image placeholder per frame,
in order), the tiny SFT, and local generation in ``predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

import datasets  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from eo_series_fixtures import series_dataset  # noqa: E402
from geodata_train import predict, sft  # noqa: E402
from geodata_train.models import load_processor  # noqa: E402
from geodata_train.recipe import ModelSpec  # noqa: E402

from training_fixtures import FAST, tiny_model  # noqa: E402,F401

pytestmark = pytest.mark.train


class Batches(TrainerCallback):
    def __init__(self) -> None:
        self.steps = 0
        self.losses: list[float] = []

        self.batch: dict[str, Any] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        loader = kw.get("train_dataloader")
        if loader is not None:
            self.batch = next(iter(loader))

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.steps = state.global_step

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return series_dataset(tmp_path_factory.mktemp("series"))


def test_collator_puts_one_placeholder_per_frame_in_order(series: Path, tiny_model: Path) -> None:
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    ds = datasets.load_dataset(str(series), split="train")
    row = next(r for r in ds if r["task"] == "temporal_cls" and len(r["images"]) == 4)
    pair = next(r for r in ds if r["task"] == "damage_cls")
    proc = load_processor(ModelSpec(name_or_path=str(tiny_model), max_pixels=3136))
    coll = DataCollatorForVisionLanguageModeling(proc)
    keep = ("images", "prompt", "completion")
    batch = coll([{k: row[k] for k in keep}, {k: pair[k] for k in keep}])
    vs = proc.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert [int((ids == vs).sum()) for ids in batch["input_ids"]] == [4, 2]
    assert batch["image_grid_thw"].shape[0] == 6
    # the frames' pixels arrive in the row's order: each frame processed alone, concatenated
    alone = torch.cat([proc.image_processor(images=[im], return_tensors="pt")["pixel_values"] for im in row["images"] + pair["images"]])
    assert torch.equal(batch["pixel_values"], alone)
    # and they differ (one colour per frame), so the order is observable
    per = alone.reshape(6, -1, alone.shape[-1]).mean(dim=(1, 2))
    assert len({round(float(v), 4) for v in per[:4]}) == 4


def test_tiny_sft_trains_on_a_time_series_row(series: Path, tiny_model: Path, tmp_path: Path) -> None:
    ds = datasets.load_dataset(str(series), split="train")
    assert max(len(x) for x in ds["images"]) == 4 and "temporal_cls" in ds["task"]
    rec = Batches()
    out = sft.run("geo-r-sft", [f"model.name_or_path={tiny_model}", f"data.dataset={series}",
                                f"train.output_dir={tmp_path / 'sft'}", "train.max_steps=3", "data.tasks=[temporal_cls]",
                                "train.per_device_train_batch_size=2", *FAST], callbacks=[rec])
    assert rec.steps == 3 and len(rec.losses) == 3 and all(l == l for l in rec.losses)  # noqa: E741
    # every batch holds both fMoW sites: the 4-frame series and the 2-frame one
    vs = load_processor(ModelSpec(name_or_path=str(out))).tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert rec.batch is not None
    assert sorted(int((ids == vs).sum()) for ids in rec.batch["input_ids"]) == [2, 4]
    assert (out / "model.safetensors").is_file()


def test_predict_sends_every_frame_in_order(series: Path, tiny_model: Path) -> None:
    from geodata_train.models import load_model
    from geodata_train.models import device_settings

    ds = datasets.load_dataset(str(series), split="train")
    row = next(r for r in ds if r["task"] == "temporal_cls" and len(r["images"]) == 4)
    spec = ModelSpec(name_or_path=str(tiny_model), max_pixels=3136)
    proc = load_processor(spec)
    text = predict._chat_texts(proc, [row["prompt"]], [row["images"]])[0]
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 4
    assert text.index("<|vision_end|>") < text.index("These 4 images show the same site in time order")
    model = load_model(spec, device_settings(spec, "test"))
    got = predict.generate(model, proc, [row["prompt"]], [row["images"]], max_new_tokens=3)
    assert len(got) == 1 and isinstance(got[0], str)
    with pytest.raises(ValueError, match=r"Number of images provided \(3\) does not match number of image placeholders \(4\)"):
        predict.generate(model, proc, [row["prompt"]], [row["images"][:3]], max_new_tokens=3)


def test_grpo_step_on_time_series_rows(series: Path, tiny_model: Path, tmp_path: Path) -> None:
    from geodata_train import grpo

    out = grpo.run("geo-r-grpo", [f"model.name_or_path={tiny_model}", f"data.dataset={series}",
                                  "data.tasks=[temporal_cls]", f"train.output_dir={tmp_path / 'grpo'}",
                                  "train.max_steps=1", "train.per_device_train_batch_size=2", "grpo.num_generations=2",
                                  "grpo.max_completion_length=4", *FAST])
    assert (out / "model.safetensors").is_file()
