"""Training backends on CPU, offline: tiny random Qwen2.5-VL, SFT -> GRPO -> predict.

The dataset is built by the ``mp16-rand-500k`` pipeline from the embedded sample; the model
is written by :func:`geodata_train.tiny.write_model` (no Hub access). Needs the train extra.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

import datasets  # noqa: E402
import polars as pl  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from geodata.cli import app  # noqa: E402
from geodata.errors import SourceError, SpecError  # noqa: E402
from geodata.registry import get_reward, reward_for_task  # noqa: E402
from geodata_train import grpo, predict, sft  # noqa: E402
from geodata_train.validate import check  # noqa: E402
from geodata_train.data import task_rewards  # noqa: E402
from geodata_train.models import device_settings, load_processor  # noqa: E402
from geodata_train.recipe import ModelSpec, list_recipes, load_recipe  # noqa: E402
from geodata_train.rewards import trl_reward_funcs  # noqa: E402
from geodata_train.tiny import write_model  # noqa: E402

from training_fixtures import FAST, mp16_rows, tiny_model  # noqa: E402,F401  (FAST: a recipe in seconds)

pytestmark = pytest.mark.train



# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def work(session_dir: Path) -> Path:
    d = session_dir / "training"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def mp16(mp16_rows: Path) -> Path:
    """MP16-Rand-500K at sample scale: the session's shared build (training_fixtures)."""
    return mp16_rows


@pytest.fixture(scope="session")
def tiny(tiny_model: Path) -> Path:
    """The tiny random Qwen2.5-VL: the session's shared model (training_fixtures)."""
    return tiny_model


def _weights(folder: Path) -> dict[str, Any]:
    return load_file(str(folder / "model.safetensors"))


def _changed(a: Path, b: Path, prefix: str) -> bool:
    """Whether any saved tensor whose name starts with ``prefix`` differs between two models."""
    wa, wb = _weights(a), _weights(b)
    keys = [k for k in wa if k.startswith(prefix)]
    assert keys and set(keys) <= set(wb)
    return any(not torch.equal(wa[k], wb[k]) for k in keys)


class Record(TrainerCallback):
    """Keeps the logs and the first batch the trainer sees."""

    def __init__(self) -> None:
        self.logs: list[dict[str, float]] = []
        self.batch: dict[str, Any] | None = None
        self.processor: Any = None
        self.name_or_path: str | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if logs:
            self.logs.append(dict(logs))

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        loader = kw.get("train_dataloader")
        if loader is not None and self.batch is None:
            self.batch = next(iter(loader))
        self.processor = kw.get("processing_class")
        if kw.get("model") is not None:
            self.name_or_path = kw["model"].name_or_path


@pytest.fixture(scope="session")
def sft_run(work: Path, tiny: Path, mp16: Path) -> tuple[Path, Record]:
    rec = Record()
    out = sft.run(
        "geo-r-sft",
        [
            f"model.name_or_path={tiny}",
            f"data.dataset={mp16}",
            f"train.output_dir={work / 'sft'}",
            "train.max_steps=3",
            "train.per_device_train_batch_size=2",
            "train.learning_rate=1.0e-3",
            *FAST,
        ],
        callbacks=[rec],
    )
    return out, rec


# -- recipes ----------------------------------------------------------------------------------
def test_every_recipe_loads_and_names_its_method() -> None:
    names = list_recipes()
    for method in ("geo-r", "geo-r1", "geovlm-r1"):
        assert f"{method}-sft" in names and f"{method}-grpo" in names
    for name in names:
        r = load_recipe(name)
        assert r.name == name
        if name.endswith("-sft"):
            assert r.sft is not None and r.grpo is None
        if name.endswith("-grpo"):
            assert r.grpo is not None and r.sft is None
            assert r.grpo.num_generations >= 2


def test_recipe_rewards_resolve_for_their_tasks() -> None:
    r = load_recipe("geo-r-grpo")
    per_task = task_rewards(r, ["geolocation"])
    assert [info.name for info, _ in per_task["geolocation"]] == [reward_for_task("geolocation").name]
    eo = load_recipe("geovlm-r1-grpo")
    assert eo.data.configs[0] == "scene_cls" and len(eo.data.configs) == 9
    assert {info.name for info, _ in task_rewards(eo, ["vqa"])["vqa"]} == {"eo_vqa", "eo_format"}
    cv = load_recipe("geo-r1-grpo")
    [(info, ref)] = task_rewards(cv, ["crossview_mcq"])["crossview_mcq"]
    assert info.name == "crossview_mcq" and ref.params["combine"] == "sum"


def test_overrides_and_interpolation() -> None:
    r = load_recipe(
        "geo-r-grpo",
        ["train.max_steps=7", "grpo.beta=0", "data.config=[a, b]"],
        env={"GEO_R_SFT": "/models/x"},
    )
    assert (r.train.max_steps, r.grpo.beta, r.data.configs) == (7, 0.0, ["a", "b"])
    assert r.model.name_or_path == "/models/x"
    assert load_recipe("geo-r-grpo", env={}).model.name_or_path == "runs/geo-r-sft"


@pytest.mark.parametrize(
    "sets, message",
    [
        (["train.max_stepz=3"], "unknown key 'train.max_stepz'"),
        (["trainer.max_steps=3"], "unknown key 'trainer'"),
        (["grpo.num_generations=many"], "'grpo.num_generations'"),
        (["grpo.generation_batch_size=6", "grpo.num_generations=4"], "multiple of grpo.num_generations"),
        (["grpo.rewards.geolocation=[no_such_reward]"], "unknown reward 'no_such_reward'"),
        (["grpo.rewards.geolocation=[{name: geolocation, params: {bogus: 1}}]"], "unknown key 'bogus'"),
        (["model.dtype=float8"], "'model.dtype'"),
        (["train.max_steps"], "not of the form key=value"),
    ],
)
def test_bad_recipe_values_fail_naming_the_key(sets: list[str], message: str) -> None:
    with pytest.raises(SpecError, match="geo-r-grpo.yaml") as exc:
        load_recipe("geo-r-grpo", sets)
    assert message in str(exc.value)


def test_unknown_recipe_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match="unknown recipe 'nope'.*geo-r-sft"):
        load_recipe("nope")


def test_method_section_is_required() -> None:
    with pytest.raises(SpecError, match="has no 'grpo' section"):
        grpo.run("geo-r-sft")


# -- bad data fails before any model is loaded --------------------------------------------------
@pytest.fixture()
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", boom)
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", boom)


def _write(ds: datasets.Dataset, out: Path) -> Path:
    (out / "data").mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(out / "data" / "train-00000-of-00001.parquet"))
    return out


def _variant(mp16: Path, out: Path, fn: Any) -> Path:
    """``out``: the built dataset with ``fn`` applied, in the same folder layout."""
    return _write(fn(datasets.load_dataset(str(mp16), split="train")), out)


def test_dataset_without_solution_fails_before_loading(mp16: Path, tmp_path: Path, no_model: None) -> None:
    bad = _variant(mp16, tmp_path / "nosol", lambda d: d.remove_columns(["solution"]))
    with pytest.raises(SourceError, match=r"lacks the columns \['solution'\] that grpo needs"):
        grpo.run("geo-r-grpo", [f"data.dataset={bad}", "model.name_or_path=/nonexistent"])
    bad = _variant(mp16, tmp_path / "nocomp", lambda d: d.remove_columns(["completion"]))
    with pytest.raises(SourceError, match=r"lacks the columns \['completion'\] that sft needs"):
        sft.run("geo-r-sft", [f"data.dataset={bad}", "model.name_or_path=/nonexistent"])


def test_task_without_reward_fails_before_loading(mp16: Path, tmp_path: Path, no_model: None) -> None:
    bad = _variant(mp16, tmp_path / "task", lambda d: d.map(lambda r: {"task": "no_such_task"}))
    with pytest.raises(SpecError, match="no reward for task 'no_such_task'.*grpo.rewards.no_such_task"):
        grpo.run("geo-r-grpo", [f"data.dataset={bad}", "model.name_or_path=/nonexistent"])


def test_missing_dataset_says_how_to_build_it(no_model: None) -> None:
    with pytest.raises(SourceError, match="dataset 'mp16-hard-200k' not found.*geodata build mp16-hard-200k"):
        grpo.run("geo-r-grpo", ["model.name_or_path=/nonexistent"])


def test_unknown_split_or_config_of_a_built_dataset_lists_the_choices(mp16: Path, no_model: None) -> None:
    with pytest.raises(SourceError, match=r"no split 'validation' \(splits: train\)"):
        sft.run("geo-r-sft", [f"data.dataset={mp16}", "data.split=validation", "model.name_or_path=/nonexistent"])
    with pytest.raises(SourceError, match=r"config 'nope' not in \['default'\]"):
        sft.run("geo-r-sft", [f"data.dataset={mp16}", "data.config=nope", "model.name_or_path=/nonexistent"])


def test_cli_validate_reports_and_fails_cleanly(mp16: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["train", "validate", "geo-r-grpo", "--set", f"data.dataset={mp16}"])
    assert ok.exit_code == 0, ok.output
    assert "grpo: 16 rows" in ok.output and reward_for_task("geolocation").name in ok.output
    bad = runner.invoke(app, ["train", "validate", "geo-r-sft", "--set", "sft.bogus=1"])
    assert bad.exit_code == 2 and "unknown key 'sft.bogus'" in bad.output


# -- devices, processor, rewards ------------------------------------------------------------------
def test_cpu_device_settings_avoid_bf16_and_flash_attention() -> None:
    s = device_settings(ModelSpec())
    if torch.cuda.is_available():
        pytest.skip("a CPU-only check")
    assert (s.dtype, s.attn_implementation, s.bf16, s.fp16, s.cuda) == (torch.float32, "sdpa", False, False, False)
    with pytest.raises(SpecError, match="flash_attention_2 needs CUDA"):
        device_settings(ModelSpec(attn_implementation="flash_attention_2"))
    with pytest.raises(SpecError, match="bfloat16 needs a CUDA GPU"):
        device_settings(ModelSpec(dtype="bfloat16"))


def test_tiny_processor_renders_qwen_chat_and_image_tokens(tiny: Path, mp16: Path) -> None:
    proc = load_processor(ModelSpec(name_or_path=str(tiny)))
    row = datasets.load_dataset(str(mp16), split="train")[0]
    text = proc.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text and text.endswith("<|im_start|>assistant\n")
    enc = proc(text=[text], images=[row["images"]], return_tensors="pt")
    n_img = int((enc["input_ids"] == proc.image_token_id).sum())
    assert n_img == int(enc["image_grid_thw"].prod()) // 4 == 4  # 56x56 px -> 16 patches -> 4 tokens


def test_reward_adapter_scores_per_task_and_skips_other_tasks(mp16: Path) -> None:
    rows = datasets.load_dataset(str(mp16), split="train").select(range(2))
    r = load_recipe("geo-r-grpo", ["grpo.rewards.crossview_mcq=[mcq_format]"])
    funcs = trl_reward_funcs(task_rewards(r, ["geolocation", "crossview_mcq"]))
    by_name = {f.__name__: f for f in funcs}
    geo = reward_for_task("geolocation")
    assert set(by_name) == {geo.name, "mcq_format"}
    gold = [[{"role": "assistant", "content": c[0]["content"][0]["text"]}] for c in rows["completion"]]
    completions = gold + [[{"role": "assistant", "content": "<think>a</think><answer>B</answer>"}], "no answer"]
    tasks = ["geolocation", "geolocation", "crossview_mcq", "crossview_mcq"]
    sols = list(rows["solution"]) + ['{"answer": "B"}', '{"answer": "B"}']
    scores = by_name[geo.name](prompts=[None] * 4, completions=completions, task=tasks, solution=sols, id=[1] * 4)
    assert scores[:2] == [pytest.approx(geo.max_score)] * 2 and scores[2:] == [None, None]
    fmt = by_name["mcq_format"](prompts=[None] * 4, completions=completions, task=tasks, solution=sols)
    assert fmt == [None, None, 1.0, 0.0]


# -- SFT -> GRPO -> predict on CPU ----------------------------------------------------------------
def test_sft_trains_on_the_completion_only(sft_run: tuple[Path, Record], tiny: Path) -> None:
    out, rec = sft_run
    assert (out / "model.safetensors").exists() and (out / "processor_config.json").exists()
    losses = [l["loss"] for l in rec.logs if "loss" in l]
    assert len(losses) == 3 and all(math.isfinite(float(x)) for x in losses)
    batch = rec.batch
    assert batch is not None and "pixel_values" in batch and "image_grid_thw" in batch
    proc = load_processor(ModelSpec(name_or_path=str(out)))
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        trained = labels != -100
        first = int(trained.nonzero()[0])
        before = proc.tokenizer.decode(ids[:first])
        assert before.endswith("<|im_start|>assistant\n")  # nothing of the prompt is trained on
        assert proc.tokenizer.decode(ids[trained]).startswith("<think>")
        assert int(trained.sum()) < int(mask.sum())
    # checkpoints keep Qwen's names: "model.*" is the language model, "visual.*" the vision tower
    assert _changed(tiny, out, "model.layers.")
    assert not _changed(tiny, out, "visual.")  # model.freeze_vision


@pytest.fixture(scope="session")
def warm(work: Path, sft_run: tuple[Path, Record], mp16: Path) -> Path:
    """SFT warm start: the tiny model memorises one row's answer (thinking cut short), so that
    sampled completions are sometimes right and sometimes broken, and the rewards vary."""
    src = datasets.load_dataset(str(mp16), split="train").select(range(1))

    def short(row: dict) -> dict:
        text = row["completion"][0]["content"][0]["text"]
        answer = text[text.index("<answer>") :]
        return {"completion": [{"role": "assistant", "content": [{"type": "text", "text": "<think>.</think>" + answer}]}]}

    folder = _write(src.map(short), work / "warm-data")
    return sft.run(
        "geo-r-sft",
        [
            f"model.name_or_path={sft_run[0]}",
            f"data.dataset={folder}",
            f"train.output_dir={work / 'warm'}",
            "train.max_steps=120",
            "train.per_device_train_batch_size=1",
            "train.learning_rate=3.0e-3",
            "train.lr_scheduler_type=constant",
            *FAST,
        ],
    )


@pytest.fixture(scope="session")
def grpo_run(work: Path, warm: Path, mp16: Path) -> tuple[Path, Record]:
    rec = Record()
    out = grpo.run(
        "geo-r-grpo",
        [
            f"model.name_or_path={warm}",
            f"data.dataset={mp16}",
            "data.max_rows=1",
            f"train.output_dir={work / 'grpo'}",
            "train.max_steps=2",
            "train.per_device_train_batch_size=8",
            "train.learning_rate=1.0e-3",
            "grpo.num_generations=8",
            "grpo.max_completion_length=160",
            "grpo.beta=0.04",
            *FAST,
            # the SFT checkpoint saved 3136..3136 px; this run asks for another cap
            "model.min_pixels=3136",
            "model.max_pixels=6272",
        ],
        callbacks=[rec],
    )
    return out, rec


def test_grpo_updates_the_policy_with_the_geolocation_reward(grpo_run: tuple[Path, Record], warm: Path) -> None:
    out, rec = grpo_run
    steps = [l for l in rec.logs if "grad_norm" in l]
    assert len(steps) == 2
    geo = reward_for_task("geolocation").name
    assert all(f"rewards/{geo}/mean" in l for l in steps)
    assert max(float(l["grad_norm"]) for l in steps) > 0
    assert any(float(l["reward_std"]) > 0 for l in steps)
    assert _changed(warm, out, "model.layers.")


def test_one_image_size_reaches_trainer_checkpoint_and_vllm(grpo_run: tuple[Path, Record], warm: Path) -> None:
    from geodata_train.models import has_stock_processor, image_size

    out, rec = grpo_run
    want = (3136, 6272)
    assert image_size(load_processor(ModelSpec(name_or_path=str(warm)))) == (3136, 3136)  # what SFT saved
    assert image_size(rec.processor) == want  # the trainer's processor

    def saved(folder: Path) -> tuple[int, int]:
        size = json.loads((folder / "processor_config.json").read_text())["image_processor"]["size"]
        return size["shortest_edge"], size["longest_edge"]

    assert saved(out) == want  # the checkpoint (what vLLM / lmms-eval load later)
    # TRL starts vLLM as LLM(model=model.name_or_path): that folder carries the recipe's size
    assert rec.name_or_path is not None and Path(rec.name_or_path) == out / ".geodata" / "policy"
    assert saved(Path(rec.name_or_path)) == want
    if has_stock_processor():
        from transformers import AutoProcessor

        assert image_size(AutoProcessor.from_pretrained(rec.name_or_path)) == want
    # predict's vLLM engine gets the same bounds as mm_processor_kwargs
    r = load_recipe("mp16-predict", [f"model.name_or_path={out}", "model.max_pixels=6272"])
    kw = predict.vllm_kwargs(r, load_processor(r.model), max_images=1)
    assert kw["mm_processor_kwargs"] == {"min_pixels": want[0], "max_pixels": want[1]}


def test_predict_writes_the_predictions_file(grpo_run: tuple[Path, Record], mp16: Path, tmp_path: Path) -> None:
    out = predict.run(
        "mp16-predict",
        [
            f"model.name_or_path={grpo_run[0]}",
            f"data.dataset={mp16}",
            "data.max_rows=3",
            "predict.max_new_tokens=8",
            "predict.batch_size=2",
            "model.max_pixels=3136",
        ],
        out=tmp_path / "preds.parquet",
    )
    df = pl.read_parquet(out)
    assert df.columns == list(predict.PREDICTION_COLUMNS)
    assert df.schema["pred_lat"] == pl.Float64 and df.schema["pred_lon"] == pl.Float64
    ids = datasets.load_dataset(str(mp16), split="train")["id"][:3]
    assert df["id"].to_list() == list(ids) and set(df["task"]) == {"geolocation"}
    assert all(isinstance(c, str) for c in df["completion"])
    # the one predictions schema: which engine and model answered, and why each answer ended
    assert set(df["engine"]) == {"hf"} and set(df["model"]) == {str(grpo_run[0])}
    assert set(df["finish_reason"]) <= {"stop", "length"} and df["finish_reason"].null_count() == 0
    # its own file it may write again; a user's file of the same name it never overwrites
    sets = [f"model.name_or_path={grpo_run[0]}", f"data.dataset={mp16}", "data.max_rows=1",
            "predict.max_new_tokens=4", "model.max_pixels=3136"]
    assert predict.run("mp16-predict", sets, out=out) == out
    mine = tmp_path / "mine.parquet"
    pl.DataFrame({"id": ["thesis"]}).write_parquet(mine)
    before = mine.read_bytes()
    from geodata.errors import OwnershipError

    with pytest.raises(OwnershipError, match=r"mine\.parquet: exists and geodata did not write it"):
        predict.run("mp16-predict", sets, out=mine)
    assert mine.read_bytes() == before


def test_predict_parses_coordinates_with_the_reward_parser(
    tiny: Path, mp16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = datasets.load_dataset(str(mp16), split="train").select(range(3))
    gold = [c[0]["content"][0]["text"] for c in rows["completion"]]
    answers = iter([gold[:2], ["I cannot tell."]])
    monkeypatch.setattr(predict, "generate", lambda *a, **k: next(answers))
    out = predict.run(
        "mp16-predict",
        [f"model.name_or_path={tiny}", f"data.dataset={mp16}", "data.max_rows=3", "predict.batch_size=2"],
        out=tmp_path / "p.parquet",
    )
    df = pl.read_parquet(out)
    sols = [json.loads(s) for s in rows["solution"]]
    assert df["pred_lat"][:2].to_list() == pytest.approx([s["lat"] for s in sols[:2]], abs=1e-6)
    assert df["pred_lon"][:2].to_list() == pytest.approx([s["lon"] for s in sols[:2]], abs=1e-6)
    assert df["pred_lat"][2] is None and df["pred_lon"][2] is None
    assert np.isfinite(df["pred_lat"][:2].to_numpy()).all()


def test_tiny_model_never_writes_into_a_users_folder(tmp_path: Path) -> None:
    from geodata.errors import OwnershipError

    user = tmp_path / "thesis"
    user.mkdir()
    (user / "config.json").write_text('{"mine": true}')
    with pytest.raises(OwnershipError, match=r"thesis: exists and is not a tiny model geodata wrote"):
        write_model(user, preset="tiny", seed=0)
    assert (user / "config.json").read_text() == '{"mine": true}' and len(list(user.iterdir())) == 1
    mine = write_model(tmp_path / "tiny", preset="tiny", seed=0)
    assert write_model(mine, preset="tiny", seed=1) == mine  # its own folder: written again
