"""Recipes map onto TRL's own configs; precision resolution; ``--resume`` parsing; the doctor.

No model is trained here (fast); needs the train extra.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from typer.testing import CliRunner  # noqa: E402

from geodata.cli import app  # noqa: E402
from geodata.errors import SpecError  # noqa: E402
from geodata_train import grpo, sft  # noqa: E402
from geodata_train.doctor import report  # noqa: E402
from geodata_train.models import DeviceSettings, Host, device_settings  # noqa: E402
from geodata_train.recipe import ModelSpec, load_recipe, trl_fields  # noqa: E402

pytestmark = pytest.mark.train

CPU = DeviceSettings(cuda=False, dtype=torch.float32, attn_implementation="sdpa", bf16=False, fp16=False)


def test_any_grpo_config_field_reaches_the_trl_config(tmp_path: Path) -> None:
    sets = [
        "grpo.epsilon_high=0.28",
        "grpo.mask_truncated_completions=true",
        "grpo.importance_sampling_level=sequence",
        "grpo.vllm_server_host=10.0.0.7",
        "grpo.vllm_server_port=8123",
        "grpo.vllm_tensor_parallel_size=2",
        "grpo.steps_per_generation=4",
        "train.save_only_model=true",
        "train.run_name=geo-r-grpo-a",
        f"train.output_dir={tmp_path}",
        "train.per_device_train_batch_size=8",
    ]
    r = load_recipe("geo-r-grpo", sets)
    cfg = grpo.grpo_config(r, CPU, r.output_dir)
    assert isinstance(cfg, trl.GRPOConfig)
    assert (cfg.epsilon_high, cfg.mask_truncated_completions, cfg.importance_sampling_level) == (0.28, True, "sequence")
    assert (cfg.vllm_server_host, cfg.vllm_server_port, cfg.vllm_tensor_parallel_size) == ("10.0.0.7", 8123, 2)
    assert (cfg.steps_per_generation, cfg.save_only_model, cfg.run_name) == (4, True, "geo-r-grpo-a")
    # the typed keys carry the recipe's values, geodata's own keys stay out
    assert (cfg.loss_type, cfg.num_generations, cfg.learning_rate) == ("dapo", 8, 1e-6)
    assert cfg.remove_unused_columns is False and cfg.output_dir == str(tmp_path)


def test_sft_fields_and_gradient_checkpointing_name() -> None:
    r = load_recipe("geo-r-sft", ["sft.packing=false", "sft.dataset_num_proc=2", "train.gradient_checkpointing=true"])
    cfg = sft.sft_config(r, CPU)
    assert isinstance(cfg, trl.SFTConfig) and cfg.dataset_num_proc == 2 and cfg.packing is False
    names = {f.name for f in dataclasses.fields(trl.SFTConfig)}
    # transformers >= 5.21 calls it activation_checkpointing; older ones gradient_checkpointing
    on = cfg.activation_checkpointing if "activation_checkpointing" in names else cfg.gradient_checkpointing
    assert on is True
    assert cfg.dataset_kwargs == {"skip_prepare_dataset": True}


@pytest.mark.parametrize(
    "key, close",
    [("grpo.epsilon_hgh", "epsilon_high"), ("train.save_only_modle", "save_only_model"), ("sft.pakcing", "packing")],
)
def test_unknown_trl_key_fails_with_close_matches_and_the_allowed_list(key: str, close: str) -> None:
    recipe = "geo-r-sft" if key.startswith("sft") else "geo-r-grpo"
    with pytest.raises(SpecError) as exc:
        load_recipe(recipe, [f"{key}=1"])
    msg = str(exc.value)
    assert f"{recipe}.yaml" in msg and f"unknown key '{key}'" in msg
    assert f"did you mean {close}" in msg or f", {close}" in msg.split("allowed")[0]
    assert "allowed: the fields of" in msg and "learning_rate" in msg.split("allowed")[1]
    assert "\n" not in msg


def test_trl_values_are_checked_by_trl() -> None:
    r = load_recipe("geo-r-grpo", ["grpo.generation_batch_size=16", "grpo.steps_per_generation=2"])
    with pytest.raises(SpecError, match="geo-r-grpo.yaml: GRPOConfig"):
        grpo.grpo_config(r, CPU, Path("/tmp/x"))


def test_cli_validate_builds_the_trl_config() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["train", "validate", "geo-r-grpo", "--no-data", "--set", "grpo.epsilon_high=0.28"])
    assert ok.exit_code == 0 and "trl.GRPOConfig ok" in ok.output, ok.output
    bad = runner.invoke(
        app,
        ["train", "validate", "geo-r-grpo", "--no-data", "--set", "grpo.generation_batch_size=16",
         "--set", "grpo.steps_per_generation=2"],
    )
    assert bad.exit_code == 2 and "GRPOConfig" in bad.output


def test_section_fields_are_trl_dataclass_fields() -> None:
    assert {"epsilon_high", "vllm_mode", "beta", "learning_rate"} <= trl_fields("grpo")
    assert {"packing", "completion_only_loss", "learning_rate"} <= trl_fields("sft")
    assert "epsilon_high" not in trl_fields("train") and "save_only_model" in trl_fields("train")


def test_eval_split_turns_evaluation_on(tmp_path: Path) -> None:
    r = load_recipe("geo-r-sft", ["data.eval_split=validation", "train.save_steps=7"])
    cfg = sft.sft_config(r, CPU)
    assert cfg.eval_strategy == "steps" and cfg.eval_steps == 7
    r = load_recipe("geo-r-sft", ["data.eval_split=validation", "train.eval_strategy=epoch"])
    assert sft.sft_config(r, CPU).eval_strategy == "epoch"
    assert sft.sft_config(load_recipe("geo-r-sft"), CPU).eval_strategy == "no"


# -- precision ---------------------------------------------------------------------------------
GPU = Host(cuda=True, bf16_ok=True, zero3=False)


@pytest.mark.parametrize(
    "host, dtype, for_training, weights, bf16, fp16",
    [
        (GPU, "auto", True, torch.float32, True, False),  # fp32 master weights, bf16 autocast
        (Host(True, True, zero3=True), "auto", True, torch.bfloat16, True, False),  # ZeRO-3 keeps its own fp32 copy
        (GPU, "bfloat16", True, torch.bfloat16, True, False),  # asked for
        (GPU, "auto", False, torch.bfloat16, True, False),  # inference
        (Host(True, False, False), "auto", True, torch.float32, False, True),  # no bf16: fp16 autocast
        (Host(False, False, False), "auto", True, torch.float32, False, False),  # CPU
    ],
)
def test_precision_keeps_fp32_master_weights(
    host: Host, dtype: str, for_training: bool, weights: Any, bf16: bool, fp16: bool
) -> None:
    s = device_settings(ModelSpec(dtype=dtype, attn_implementation="sdpa"), host=host, for_training=for_training)
    assert (s.dtype, s.bf16, s.fp16) == (weights, bf16, fp16)


def test_bf16_weights_would_lose_the_small_updates() -> None:
    """Why fp32 masters: an lr 1e-6 AdamW step (|update| ~ 1e-6) vanishes in bf16 weights."""
    w = 0.05 + torch.rand(4096) * 0.05  # typical weight magnitudes: bf16 spacing ~2e-4 here
    step = torch.full_like(w, 1e-6)
    assert torch.equal((w.bfloat16() - step.bfloat16()), w.bfloat16())
    assert not torch.equal(w - step, w)


# -- CLI ------------------------------------------------------------------------------------------
@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake(recipe: str, sets: list[str], **kw: Any) -> Path:
        seen["recipe"], seen["sets"] = recipe, list(sets)
        return Path("runs/x")

    monkeypatch.setattr(sft, "run", fake)
    monkeypatch.setattr(grpo, "run", fake)
    return seen


@pytest.mark.parametrize(
    "args, resume",
    [
        (["--resume"], "train.resume_from_checkpoint=last"),
        (["--resume", "runs/a/checkpoint-4"], "train.resume_from_checkpoint=runs/a/checkpoint-4"),
        (["runs/a/checkpoint-4", "--resume"], "train.resume_from_checkpoint=runs/a/checkpoint-4"),
        ([], None),
    ],
)
@pytest.mark.parametrize("method", ["sft", "grpo"])
def test_cli_resume_optional_checkpoint(captured: dict[str, Any], method: str, args: list[str], resume: str | None) -> None:
    res = CliRunner().invoke(app, ["train", method, f"geo-r-{method}", "--set", "train.max_steps=3", *args])
    assert res.exit_code == 0, res.output
    expect = ["train.max_steps=3"] + ([resume] if resume else [])
    assert captured["sets"] == expect


def test_cli_checkpoint_without_resume_fails(captured: dict[str, Any]) -> None:
    res = CliRunner().invoke(app, ["train", "sft", "geo-r-sft", "runs/a/checkpoint-4"])
    assert res.exit_code == 2 and "after --resume" in res.output


def test_resume_last_without_checkpoint_names_the_folder(tmp_path: Path) -> None:
    r = load_recipe("geo-r-sft", [f"train.output_dir={tmp_path}", "train.resume_from_checkpoint=last"])
    with pytest.raises(SpecError, match=f"no checkpoint-\\* folder in {tmp_path}"):
        sft.resume_point(r)
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-12").mkdir()
    assert sft.resume_point(r) == str(tmp_path / "checkpoint-12")
    bad = load_recipe("geo-r-sft", [f"train.resume_from_checkpoint={tmp_path}"])
    with pytest.raises(SpecError, match="not a trainer checkpoint"):
        sft.resume_point(bad)


def test_doctor_lists_packages_recipes_and_missing() -> None:
    lines = report()
    text = "\n".join(lines)
    for dist in ("torch", "transformers", "trl", "vllm", "flash-attn", "deepspeed"):
        assert any(line.strip().startswith(dist) for line in lines), dist
    assert f"  trl           {trl.__version__}" in text
    block = text.split("  geo-r1-grpo:")[1].split("\n  geo-r1-sft:")[0]
    assert "vllm" in block and "deepspeed" in block and "flash-attn" in block
    vllm_state = "installed" if importlib.util.find_spec("vllm") else "MISSING"
    assert [ln.split()[1] for ln in block.splitlines() if ln.strip().startswith("vllm")] == [vllm_state]
    assert "missing:" in text
    res = CliRunner().invoke(app, ["train", "doctor"])
    assert res.exit_code == 0 and "recipes:" in res.output
    if importlib.util.find_spec("vllm") is None:
        assert "pip install -e '.[train,vllm]'" in res.output  # printed as is, not as rich markup


# -- recipes vs the papers -------------------------------------------------------------------------
def test_geo_r_sft_global_batch_is_the_papers() -> None:
    r = load_recipe("geo-r-sft")
    t = r.train
    assert (t.learning_rate, t.num_train_epochs) == (1e-5, 1)
    assert t.per_device_train_batch_size * t.gradient_accumulation_steps * 8 == 64  # on 8 GPUs
    for name in ("geo-r-grpo", "geo-r1-grpo", "geovlm-r1-grpo"):
        assert load_recipe(name).grpo.max_completion_length == 2048


def test_geo_r1_grpo_trains_all_cross_view_sources_at_once(tmp_path: Path) -> None:
    import datasets

    from geodata.engine import build

    res = build("crossview-pairs", out=tmp_path / "cv", force=True)
    r = load_recipe("geo-r1-grpo", [f"data.dataset={res.path}"])
    assert r.data.configs == ["cvusa", "cvact", "vigor", "cvcities"] and r.grpo.stages is False
    [(name, rows, funcs)] = grpo.prepare(r)
    per = {c: len(datasets.load_dataset(str(res.path), c, split="train")) for c in r.data.configs}
    assert all(per.values()) and len(rows) == sum(per.values()) and name == "cvusa+cvact+vigor+cvcities"
    [fn] = funcs
    gold = "<think>Candidate B shows the same crossing.</think><answer>B</answer>"
    loop = "<think>" + "the road bends left " * 300 + "</think><answer>B</answer>"
    s = fn(prompts=[None] * 2, completions=[gold, loop], task=["crossview_mcq"] * 2, solution=['{"answer": "B"}'] * 2)
    assert s[0] == pytest.approx(1.0) and s[1] < 0.1  # right and well-formed, but overlong and looping


def test_grpo_reference_model_is_bf16_beside_fp32_master_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geodata_train.models

    seen: dict[str, Any] = {}
    monkeypatch.setattr(geodata_train.models, "build_config", lambda *a, **extra: seen.update(extra))
    r = load_recipe("geo-r-grpo", [f"train.output_dir={tmp_path}"])
    grpo.grpo_config(r, device_settings(ModelSpec(attn_implementation="sdpa"), host=GPU), tmp_path)
    assert seen == {"model_init_kwargs": {"dtype": "bfloat16"}}  # policy fp32 + autocast, reference bf16
    seen.clear()
    grpo.grpo_config(r, CPU, tmp_path)
    assert seen == {}
