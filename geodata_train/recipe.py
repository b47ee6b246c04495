"""Training recipes: one YAML file per training run; hyper-parameters live here, not in code.

A recipe has the sections ``model``, ``data``, ``train`` (shared trainer arguments) and one
of ``sft`` / ``grpo``, plus ``predict``::

    name: geo-r-grpo
    model: {name_or_path: "${GEO_R_SFT:-runs/geo-r-sft}"}
    data: {dataset: mp16-hard-200k}
    train: {learning_rate: 1.0e-6, max_steps: 1000}
    grpo:
      num_generations: 8
      beta: 0.04
      rewards: {geolocation: [geolocation]}

Strings may use ``${VAR}`` / ``${VAR:-default}``; ``--set a.b=value`` overrides any key
(``--set train.max_steps=2 --set model.name_or_path=/tmp/tiny``). Every key is checked: an
unknown key, a wrong type, an unknown reward or reward parameter fails on load, with the
file and key in the message, before anything is downloaded or any model is loaded.

``train``, ``sft`` and ``grpo`` map onto TRL's own configs: besides the keys typed here, any
field of ``trl.SFTConfig`` (``sft``; ``train``: the ``TrainingArguments`` fields) or
``trl.GRPOConfig`` (``grpo``) is accepted (``grpo.epsilon_high``, ``train.eval_strategy``,
``train.save_only_model`` ...) and checked by name against ``dataclasses.fields`` of the
installed TRL class; an unknown name fails listing the allowed ones.

Importing this module imports neither torch nor transformers; a recipe that sets a TRL field
not typed here imports TRL's config class to check the name.
"""

from __future__ import annotations

import copy
import os
import re
import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from geodata.errors import SpecError, did_you_mean
from geodata.registry import get_reward, validate_params
from geodata.spec import interpolate, parse_override, read_mapping, set_path, validate_model

__all__ = [
    "Recipe",
    "ModelSpec",
    "LoraSpec",
    "DataSpec",
    "TrainSpec",
    "SFTSpec",
    "GRPOSpec",
    "RewardRef",
    "PredictSpec",
    "RECIPES_DIR",
    "find_recipe",
    "load_recipe",
    "list_recipes",
]

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"

#: Linear layers of the language model (not the vision tower) that LoRA adapts by default.
DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TRLSection(BaseModel):
    """A section whose keys beyond the typed ones are fields of a TRL/transformers config class."""

    model_config = ConfigDict(extra="allow")

    #: keys of this section that are geodata's own (not passed to the TRL config)
    _own: ClassVar[tuple[str, ...]] = ()

    def trl_kwargs(self) -> dict[str, Any]:
        """The section as keyword arguments of the TRL config (geodata's own keys left out)."""
        return self.model_dump(exclude=set(self._own))


class LoraSpec(_Strict):
    """LoRA adapter; the adapter is merged into the saved model unless ``merge`` is false."""

    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = DEFAULT_LORA_TARGETS
    merge: bool = True


class ModelSpec(_Strict):
    """The model to train or run: a Hub id or any local folder (e.g. a previous run)."""

    name_or_path: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    lora: LoraSpec | None = None
    freeze_vision: bool = True
    min_pixels: int | None = Field(None, gt=0, description="image processor lower bound, pixels")
    max_pixels: int | None = Field(None, gt=0, description="image processor upper bound, pixels")


class DataSpec(_Strict):
    """Where the rows come from: ``datasets/<name>``, a dataset folder, or a Hub id.

    ``eval_split`` (with ``eval_max_rows``) gives the trainer an eval set (the same configs);
    when it is set and ``train.eval_strategy`` is not, evaluation runs every ``save_steps``.
    """

    dataset: str
    config: str | list[str] | None = Field(
        None,
        description="config(s); SFT concatenates a list, GRPO trains on it stage by stage "
        "(grpo.stages: false concatenates)",
    )
    split: str = "train"
    max_rows: int | None = Field(None, gt=0, description="first N rows of each config")
    tasks: list[str] | None = Field(None, description="keep only rows of these tasks")
    eval_split: str | None = Field(None, description="split evaluated during training")
    eval_max_rows: int | None = Field(None, gt=0, description="first N eval rows of each config")

    @property
    def configs(self) -> list[str | None]:
        if self.config is None:
            return [None]
        return [self.config] if isinstance(self.config, str) else list(self.config)


class TrainSpec(_TRLSection):
    """Arguments shared by the SFT and GRPO trainers: any ``transformers.TrainingArguments`` field.

    The keys typed here carry geodata's defaults; ``gradient_checkpointing`` is passed as
    ``activation_checkpointing`` where the installed transformers has that name.
    ``resume_from_checkpoint`` (``--resume``): a checkpoint folder, or ``last`` for the newest
    ``checkpoint-*`` in ``output_dir``.
    """

    output_dir: str | None = Field(None, description="default: runs/<recipe name>")
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(1e-5, gt=0)
    per_device_train_batch_size: int = Field(1, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    warmup_steps: float = Field(0, ge=0, description="steps, or a fraction of all steps when < 1")
    lr_scheduler_type: str = "cosine"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    logging_steps: int = Field(10, gt=0)
    save_steps: int = Field(500, gt=0)
    save_total_limit: int | None = 2
    seed: int = 42
    gradient_checkpointing: bool = True
    dataloader_num_workers: int = Field(0, ge=0)
    report_to: str | list[str] = "none"
    resume_from_checkpoint: str | None = Field(
        None, description="a checkpoint folder, or 'last' (the newest checkpoint-* in output_dir)"
    )


class SFTSpec(_TRLSection):
    """Supervised fine-tuning on the prompt/completion rows; the loss covers the completion.

    Any other ``trl.SFTConfig`` field is accepted.
    """

    max_length: int | None = Field(
        None, gt=0, description="truncate longer rows (keep it above the image tokens)"
    )
    completion_only_loss: bool = True


class RewardRef(_Strict):
    """One reward of a task: a name registered in ``geodata``, its weight and parameters."""

    name: str
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)


class GRPOSpec(_TRLSection):
    """Group-relative policy optimisation; rewards are picked per row by its ``task``.

    Any other ``trl.GRPOConfig`` field is accepted (``epsilon_high``, ``mask_truncated_completions``,
    ``importance_sampling_level``, ``vllm_server_host``, ``steps_per_generation`` ...).
    ``rewards``, ``stages``, ``reference``, ``reference_model`` and ``stage_launcher`` are geodata's
    own keys.
    """

    _own: ClassVar[tuple[str, ...]] = ("rewards", "reference", "reference_model", "stage_launcher", "stages")


    num_generations: int = Field(8, ge=2)
    generation_batch_size: int | None = Field(
        None, gt=0, description="completions per generation round; a multiple of num_generations"
    )
    beta: float = Field(0.04, ge=0, description="KL coefficient; > 0 loads a reference model")
    epsilon: float = Field(0.2, gt=0)
    num_iterations: int = Field(1, gt=0)
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "luspo", "sapo", "vespo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    max_completion_length: int = Field(512, gt=0)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    rewards: dict[str, list[RewardRef]] = Field(
        default_factory=dict,
        description="task -> rewards; a task not listed uses the reward registered for it",
    )
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    log_completions: bool = False
    stages: bool = Field(
        True,
        description="a data.config list trains stage by stage (true) or concatenated in one run (false)",
    )
    reference: Literal["base", "previous"] = Field(
        "previous",
        description="KL reference of stage 2.. of a multi-stage run: the recipe's model (base) "
        "or the previous stage's output (previous)",
    )
    reference_model: str | None = Field(
        None, description="KL reference model folder or Hub id (default: the model trained from)"
    )
    stage_launcher: str | None = Field(
        None,
        description="command that starts each stage of a multi-stage run, before '-m geodata_train' "
        "(default: this Python; e.g. 'accelerate launch --num_processes 8')",
    )

    @field_validator("rewards", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        # ``geolocation: geolocation`` and ``geolocation: [geo_distance, geo_format]`` are shorthands
        if not isinstance(v, dict):
            return v
        out = {}
        for task, refs in v.items():
            refs = [refs] if isinstance(refs, (str, dict)) else refs
            out[task] = [{"name": r} if isinstance(r, str) else r for r in refs or []]
        return out


class PredictSpec(_Strict):
    """Batch generation over ``data`` with ``model``."""

    max_new_tokens: int = Field(512, gt=0)
    batch_size: int = Field(8, gt=0)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    output: str | None = Field(None, description="default: <output_dir>/predictions.parquet")
    engine: Literal["auto", "hf", "vllm", "openai"] = Field(
        "auto", description="openai when base_url is set; else vllm where it is installed and CUDA is present "
                            "(auto), else transformers generate"
    )
    base_url: str | None = Field(None, description="an OpenAI-compatible endpoint (http://host:8000/v1): engine openai")
    api_key_env: str | None = Field(None, description="engine openai: the environment variable holding the key")
    concurrency: int = Field(16, gt=0, description="engine openai: requests in flight")
    timeout: float = Field(120.0, gt=0, description="engine openai: seconds per request")
    max_retries: int = Field(5, ge=0, description="engine openai: retries on 429, 5xx, timeouts, dropped connections")
    max_failed_fraction: float = Field(
        0.0, ge=0, le=1, description="engine openai: failed requests accepted (their rows are left for the next run)"
    )
    save_every: int = Field(1, gt=0, description="write a partial output every N batches (resume point)")
    vllm_gpu_memory_utilization: float = Field(0.85, gt=0, le=1)


class Recipe(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    sft: SFTSpec | None = None
    grpo: GRPOSpec | None = None
    predict: PredictSpec = Field(default_factory=PredictSpec)

    #: the YAML file the recipe came from
    path: Path | None = Field(default=None, exclude=True)

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir or f"runs/{self.name}")

    @property
    def where(self) -> str:
        return str(self.path) if self.path else self.name

    def require(self, method: Literal["sft", "grpo"]) -> SFTSpec | GRPOSpec:
        """The ``sft`` / ``grpo`` section, or an error naming the recipe."""
        section = getattr(self, method)
        if section is None:
            raise SpecError(f"{self.where}: recipe '{self.name}' has no '{method}' section")
        return section


def adhoc_recipe(dataset: str, sets: Iterable[str] = ()) -> Recipe:
    """A predict-only recipe over ``dataset`` (``geodata predict --dataset X --model M``), with ``sets``.

    Its name is ``predict-<dataset name>`` and its output ``runs/predict-<dataset name>/predictions.parquet``.
    """
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(str(dataset).rstrip("/")).name.lower()).strip("-.") or "dataset"
    raw: dict[str, Any] = {"name": f"predict-{stem}", "description": f"predictions over {dataset}",
                           "data": {"dataset": str(dataset)}}
    where = f"geodata predict --dataset {dataset}"
    raw = apply_overrides(raw, sets, where)
    recipe = validate_model(Recipe, raw, where)
    return recipe


# -- is the model there? (one line naming the command that makes it) ------------------------


def _looks_local(path: str) -> bool:
    """A folder path rather than a Hub id (``org/name``)."""
    return (path.startswith(("/", ".", "~")) or path.count("/") != 1 or Path(path).parts[0] == "runs"
            or os.sep != "/" and os.sep in path)


def _made_by(path: str) -> str | None:
    """The command that writes the run folder ``path`` (``runs/<recipe>`` of a shipped recipe)."""
    name = Path(path).name
    for recipe in list_recipes():  # the raw YAML: no TRL import, no variable needed
        try:
            raw = read_mapping(RECIPES_DIR / f"{recipe}.yaml", "recipe")
            out = interpolate((raw.get("train") or {}).get("output_dir") or f"runs/{recipe}", None, recipe)
        except Exception:  # noqa: BLE001 - unreadable: not the one
            continue
        if str(out).rstrip("/") == path.rstrip("/") or recipe == name:
            stage = "grpo" if raw.get("grpo") is not None else "sft" if raw.get("sft") is not None else None
            if stage:
                return f"geodata train {stage} {recipe} (make {stage} RECIPE={recipe})"
    return None


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id: let transformers say so
        return True
    return isinstance(hit, str)


_TINY = "geodata train tiny-model runs/tiny, then --set model.name_or_path=runs/tiny"


def check_model(spec: ModelSpec, where: str = "") -> None:
    """A one-line error naming a model or checkpoint that is not there, with the command that makes it.

    A missing local folder (``runs/geo-r-sft`` before its SFT stage ran) names the stage that
    writes it; a Hub id that is not in the local Hugging Face cache while ``HF_HUB_OFFLINE`` is
    set names the download and the offline alternative (``geodata train tiny-model``), instead
    of a Hub connection error.
    """
    path = str(spec.name_or_path)
    where = f"{where}: " if where else ""
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            made = _made_by(path)
            raise SpecError(f"{where}model.name_or_path {path}: the folder holds no model (no config.json)"
                            + (f"; it is made by {made}" if made else ""))
        return
    if _looks_local(path) or local.exists():
        made = _made_by(path)
        raise SpecError(
            f"{where}model.name_or_path {path}: no such model folder; "
            + (f"it is made by the earlier stage: {made}" if made else f"for a small offline model: {_TINY}")
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline and not _hub_cached(path):
        raise SpecError(
            f"{where}model '{path}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: download "
            f"it where the Hub is reachable (huggingface-cli download {path}), or use a local model: {_TINY}"
        )


def list_recipes() -> list[str]:
    """Names of the recipes shipped in ``geodata_train/recipes``."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def find_recipe(name_or_path: str | Path) -> Path:
    """A YAML path as given, or ``geodata_train/recipes/<name>.yaml``."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SpecError(f"recipe file {p} does not exist")
        return p
    cand = RECIPES_DIR / f"{name_or_path}.yaml"
    if cand.exists():
        return cand
    raise SpecError(f"unknown recipe '{name_or_path}' (known: {', '.join(list_recipes())})")


def apply_overrides(raw: dict[str, Any], sets: Iterable[str], where: str) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to the raw recipe mapping."""
    raw = copy.deepcopy(raw)
    top = set(Recipe.model_fields) - {"path"}
    for item in sets:
        parts, value = parse_override(item, where)
        if parts[0] not in top:
            raise SpecError(
                f"{where}: --set '{'.'.join(parts)}': unknown key '{parts[0]}' (allowed: {', '.join(sorted(top))})"
            )
        set_path(raw, parts, value, where)
    return raw


#: the TRL / transformers class whose fields each section accepts
_SECTION_CLASSES = {"train": "TrainingArguments", "sft": "SFTConfig", "grpo": "GRPOConfig"}


@lru_cache(maxsize=None)
def trl_fields(section: str) -> frozenset[str]:
    """Field names of the config class behind ``section`` (``train``, ``sft``, ``grpo``).

    Imports TRL (and so transformers and torch).
    """
    name = _SECTION_CLASSES[section]
    if name == "TrainingArguments":
        from transformers import TrainingArguments as cls
    else:
        import trl

        cls = getattr(trl, name)
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def _check_trl_fields(recipe: Recipe) -> None:
    """Every key of ``train`` / ``sft`` / ``grpo`` is typed here or a field of its TRL class."""
    for section in ("train", "sft", "grpo"):
        spec = getattr(recipe, section)
        if spec is None or not spec.model_extra:
            continue
        try:
            allowed = trl_fields(section)
        except ImportError:
            keys = ", ".join(f"{section}.{k}" for k in spec.model_extra)
            raise SpecError(
                f"{recipe.where}: {keys}: not a key geodata types; checking it against "
                f"trl.{_SECTION_CLASSES[section]} needs the train extra (pip install -e '.[train]')"
            ) from None
        own = set(type(spec).model_fields)
        for key in spec.model_extra:
            if key in allowed:
                continue
            names = sorted(allowed | own)
            hint = did_you_mean(key, names)
            raise SpecError(
                f"{recipe.where}: unknown key '{section}.{key}'{hint}; allowed: the fields of "
                f"{_SECTION_CLASSES[section]}: {', '.join(names)}"
            )


def _check_rewards(recipe: Recipe) -> None:
    """Every reward a GRPO recipe names exists and takes the parameters given."""
    if recipe.grpo is None:
        return
    for task, refs in recipe.grpo.rewards.items():
        if not refs:
            raise SpecError(f"{recipe.where}: grpo.rewards.{task}: names no reward")
        for i, ref in enumerate(refs):
            try:
                info = get_reward(ref.name)
            except SpecError as exc:
                raise SpecError(f"{recipe.where}: grpo.rewards.{task}[{i}]: {exc}") from None
            ref.params = validate_params(
                info.params, ref.params, f"{recipe.where}: grpo.rewards.{task}[{i}] ({ref.name}) params"
            )


def load_recipe(
    name_or_path: str | Path, sets: Iterable[str] = (), env: dict[str, str] | None = None
) -> Recipe:
    """Read, override, interpolate and validate a recipe; every error names the file and key.

    Parameters
    ----------
    name_or_path
        A recipe name in ``geodata_train/recipes`` (``geo-r-sft``) or a YAML path.
    sets
        ``key.path=value`` overrides.
    env
        Variables for ``${VAR}`` (default: the environment).
    """
    path = find_recipe(name_or_path)
    where = str(path)
    raw = read_mapping(path, "recipe must be a mapping with name, model, data and train")
    raw = apply_overrides(raw, sets, where)
    raw = interpolate(raw, env, "")
    recipe = validate_model(Recipe, raw, where)
    recipe.path = path
    g = recipe.grpo
    if g is not None:
        gbs = g.generation_batch_size
        if gbs is not None and gbs % g.num_generations:
            raise SpecError(
                f"{where}: grpo.generation_batch_size ({gbs}) must be a multiple of "
                f"grpo.num_generations ({g.num_generations})"
            )
    _check_trl_fields(recipe)
    _check_rewards(recipe)
    return recipe
