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
    recipe: str = typer.Argument(..., help="recipe name or a YAML path (its model, data and predict sections)"),
    model: Optional[str] = typer.Option(None, "--model", help="model folder or Hub id (model.name_or_path)"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="dataset name, folder or Hub id (data.dataset)"),
    out: Optional[Path] = typer.Option(None, "--out", help="predictions Parquet (predict.output)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    """Batch generation over a dataset -> Parquet with id, task, completion, pred_lat, pred_lon."""
    from geodata_train import predict as run_predict

    sets = list(set_ or [])
    if model:
        sets.append(f"model.name_or_path={model}")
    if dataset:
        sets.append(f"data.dataset={dataset}")
    console.print(f"wrote {run_predict.run(recipe, sets, out=out)}")
