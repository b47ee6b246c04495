"""``geodata train ...`` and ``geodata predict``: the TRL backends (``geodata_train``, the train extra).

The commands import ``geodata_train`` inside their bodies: geodata itself never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import GeodataError
from .app import app, cli_errors, console


train_app = typer.Typer(help="Train VLMs on built datasets (needs the train extra).", no_args_is_help=True)


app.add_typer(train_app, name="train")


_SET_HELP = "override a recipe value: section.key=value (repeatable)"


_RESUME_HELP = "continue from the last checkpoint-* in train.output_dir, or from the CHECKPOINT given after it"


def _resume_sets(sets: Optional[List[str]], resume: bool, checkpoint: Optional[str]) -> list[str]:
    """``--resume [CHECKPOINT]`` as a ``train.resume_from_checkpoint`` override."""
    from ..errors import SpecError

    out = list(sets or [])
    if checkpoint and not resume:
        raise SpecError(f"unexpected argument '{checkpoint}' (a checkpoint goes after --resume)")
    if resume:
        out.append(f"train.resume_from_checkpoint={checkpoint or 'last'}")
    return out


@train_app.command("sft")
@cli_errors
def train_sft(
    recipe: str = typer.Argument(..., help="recipe name (geodata_train/recipes/NAME.yaml) or a YAML path"),
    checkpoint: Optional[str] = typer.Argument(None, help="with --resume: the checkpoint folder", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_HELP),
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer) on a recipe's prompt/completion rows."""
    from geodata_train import sft

    console.print(f"saved {sft.run(recipe, _resume_sets(set_, resume, checkpoint))}")


@train_app.command("grpo")
@cli_errors
def train_grpo(
    recipe: str = typer.Argument(..., help="recipe name (geodata_train/recipes/NAME.yaml) or a YAML path"),
    checkpoint: Optional[str] = typer.Argument(None, help="with --resume: the checkpoint folder", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    resume: bool = typer.Option(False, "--resume", help=_RESUME_HELP),
) -> None:
    """GRPO (TRL GRPOTrainer) with the geodata reward of each row's task; multi-stage recipes run a process per stage."""
    from geodata_train import grpo

    console.print(f"saved {grpo.run(recipe, _resume_sets(set_, resume, checkpoint))}")


@train_app.command("doctor")
@cli_errors
def train_doctor() -> None:
    """What is installed for training, what each recipe needs (flash-attn, vLLM, DeepSpeed) and what is missing."""
    from geodata_train.doctor import report

    for line in report():
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@train_app.command("validate")
@cli_errors
def train_validate(
    recipe: str = typer.Argument(..., help="recipe name or a YAML path"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    no_data: bool = typer.Option(False, "--no-data", help="check the recipe only, not its dataset"),
) -> None:
    """Check a recipe, its dataset's columns and the rewards of its tasks; loads no model."""
    from geodata_train.validate import check

    for line in check(recipe, set_ or [], data=not no_data):
        console.print(line, highlight=False)


@train_app.command("recipes")
@cli_errors
def train_recipes() -> None:
    """List the shipped recipes."""
    from geodata_train.recipe import list_recipes, load_recipe

    t = Table(title="geodata_train/recipes")
    for col in ("recipe", "method", "model", "dataset", "description"):
        t.add_column(col)
    for name in list_recipes():
        try:
            r = load_recipe(name)
        except GeodataError as exc:
            t.add_row(name, Text("invalid", style="red"), "", "", str(exc))
            continue
        method = "grpo" if r.grpo else "sft" if r.sft else "predict"
        t.add_row(name, method, r.model.name_or_path, r.data.dataset, r.description)
    console.print(t)


@train_app.command("tiny-model")
@cli_errors
def train_tiny_model(
    out: Path = typer.Argument(..., help="folder to write the model and processor to"),
    preset: str = typer.Option("tiny", "--preset", help="tiny (CPU smoke runs) or 3b (Qwen2.5-VL-3B shapes)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write a random-init Qwen2.5-VL with an offline processor (no download)."""
    from geodata_train.tiny import write_model

    console.print(f"wrote {write_model(out, preset=preset, seed=seed)}")


@app.command("predict")
@cli_errors
def predict(
    recipe: Optional[str] = typer.Argument(
        None, help="recipe name or a YAML path (its model, data and predict sections); "
                   "without one: --dataset and --model (or --base-url)"),
    model: Optional[str] = typer.Option(None, "--model", help="model folder or Hub id; with --base-url the served "
                                                              "model id (model.name_or_path)"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="dataset name, folder or Hub id (data.dataset)"),
    config: Optional[str] = typer.Option(None, "--config", help="config of the dataset (data.config); 'all' for every "
                                                                "config of rows, each row labelled by its config"),
    split: Optional[str] = typer.Option(None, "--split", help="split to predict (data.split; default train)"),
    engine: Optional[str] = typer.Option(None, "--engine", help="auto | hf | vllm | openai (predict.engine)"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, "
                                                                    "http://host:8000/v1 (engine openai)"),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="environment variable holding the "
                                                                          "endpoint's key (its name, not the key)"),
    out: Optional[Path] = typer.Option(None, "--out", help="predictions Parquet (predict.output)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    """Predict over any built dataset -> Parquet in the one predictions schema (id, config, task, completion,
    pred_lat, pred_lon, answer, parsed, finish_reason, engine, model). Resumable; sharded under accelerate launch."""
    from geodata_train import predict as run_predict
    from geodata_train.recipe import adhoc_recipe

    from ..errors import SpecError

    sets = list(set_ or [])
    for key, value in (("model.name_or_path", model), ("data.dataset", dataset), ("data.config", config),
                       ("data.split", split),
                       ("predict.engine", engine), ("predict.base_url", base_url),
                       ("predict.api_key_env", api_key_env)):
        if value:
            sets.append(f"{key}={value}")
    if recipe is None:
        if not dataset:
            raise SpecError("predict: give a recipe, or --dataset NAME with --model PATH (or --base-url URL)")
        if not model and not base_url:
            raise SpecError(f"predict: --dataset {dataset}: give --model PATH (a folder or Hub id) or --base-url URL")
        rec = adhoc_recipe(dataset, sets)
        console.print(f"wrote {run_predict.run(rec, out=out)}")
        return
    console.print(f"wrote {run_predict.run(recipe, sets, out=out)}")
