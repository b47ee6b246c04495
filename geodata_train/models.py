"""Device selection, precision, model and processor loading for the training backends.

Precision (``model.dtype: auto``): training keeps **fp32 master weights** and runs the
forward/backward under bf16 autocast on CUDA (fp16 autocast where the GPU lacks bf16), so an
AdamW step of lr 1e-6 is not rounded away; weights are stored in bf16 only under DeepSpeed
ZeRO-3 (whose optimizer keeps its own fp32 copy) or when ``model.dtype: bfloat16`` asks for
it. Prediction loads bf16 weights on CUDA. On CPU everything is fp32 with SDPA unless the
recipe asks for ``train.bf16`` autocast. ``flash_attention_2`` is used where CUDA and the
``flash-attn`` package are present.

The processor is the stock ``Qwen2_5_VLProcessor`` whenever torchvision is importable;
without torchvision Qwen2(.5)-VL checkpoints load with :class:`ImageOnlyQwenVLProcessor`,
which saves itself as a stock ``Qwen2_5_VLProcessor`` (with a video processor section), so
``AutoProcessor.from_pretrained`` on any folder written here returns a processor.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
    Qwen2_5_VLProcessor,
)
from transformers.processing_utils import ProcessorMixin

from geodata.errors import SpecError

from .recipe import _TINY, LoraSpec, ModelSpec, _hub_cached, check_model

__all__ = [
    "DeviceSettings",
    "Host",
    "ImageOnlyQwenVLProcessor",
    "device_settings",
    "image_size",
    "has_stock_processor",
    "check_model",
    "load_processor",
    "load_model",
    "lora_config",
    "save_processor",
    "trainer_kwargs",
]

log = logging.getLogger("geodata.training")

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}

#: the class name every processor written here is saved under
STOCK_PROCESSOR = "Qwen2_5_VLProcessor"


def has_stock_processor() -> bool:
    """Whether the stock Qwen2.5-VL processor can be built (its video processor needs torchvision)."""
    return importlib.util.find_spec("torchvision") is not None


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor without the video processor (which needs torchvision).

    Images, the chat template and the token expansion behave exactly as in the stock
    ``Qwen2_5_VLProcessor``; only video input is unsupported. It saves itself as the stock
    class, with a video processor section mirroring the image settings, so that the folder
    loads with ``AutoProcessor`` (and vLLM) wherever torchvision is installed.
    """

    def __init__(
        self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs: Any
    ) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["processor_class"] = STOCK_PROCESSOR
        image = out.get("image_processor")
        if isinstance(image, dict) and "video_processor" not in out:
            keep = ("do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
                    "merge_size", "patch_size", "resample", "rescale_factor", "size", "temporal_patch_size")
            out["video_processor"] = {k: image[k] for k in keep if k in image} | {
                "video_processor_type": "Qwen2VLVideoProcessor"
            }
        return out


@dataclass(frozen=True)
class Host:
    """What the machine offers: CUDA, bf16 on it, and whether DeepSpeed ZeRO-3 is in use."""

    cuda: bool
    bf16_ok: bool
    zero3: bool

    @classmethod
    def detect(cls) -> "Host":
        cuda = torch.cuda.is_available()
        return cls(cuda=cuda, bf16_ok=cuda and torch.cuda.is_bf16_supported(), zero3=_zero3())


def _zero3() -> bool:
    """Whether ``accelerate launch`` started this process with DeepSpeed ZeRO stage 3."""
    use = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")
    return use and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "") == "3"


@dataclass(frozen=True)
class DeviceSettings:
    """What the host supports and what the recipe asked for, resolved.

    ``dtype`` is the storage dtype of the weights; ``bf16`` / ``fp16`` are the autocast
    (mixed-precision) flags passed to the trainer.
    """

    cuda: bool
    dtype: torch.dtype
    attn_implementation: str
    bf16: bool
    fp16: bool


def _has_flash_attn() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def device_settings(
    spec: ModelSpec, where: str = "model", host: Host | None = None, for_training: bool = True
) -> DeviceSettings:
    """Resolve ``dtype`` / ``attn_implementation`` (``auto``) and the autocast for this host.

    ``auto`` training weights are fp32 (bf16 only under ZeRO-3), with bf16 autocast on CUDA
    with bf16 (fp16 autocast on older GPUs); prediction weights are bf16 on CUDA. On CPU:
    fp32, no autocast. Attention: flash-attention 2 on CUDA with ``flash-attn`` installed,
    else SDPA. An explicit choice the host cannot honour is an error.

    Examples
    --------
    >>> from geodata_train.recipe import ModelSpec
    >>> gpu = Host(cuda=True, bf16_ok=True, zero3=False)
    >>> s = device_settings(ModelSpec(attn_implementation="sdpa"), host=gpu)
    >>> s.dtype, s.bf16
    (torch.float32, True)
    >>> device_settings(ModelSpec(attn_implementation="sdpa"), host=Host(True, True, zero3=True)).dtype
    torch.bfloat16
    """
    h = host or Host.detect()
    if spec.dtype == "auto":
        half = torch.bfloat16 if h.bf16_ok else torch.float32
        dtype = half if (h.zero3 or not for_training) else torch.float32
    else:
        dtype = _DTYPES[spec.dtype]
        if dtype is torch.bfloat16 and not h.bf16_ok:
            raise SpecError(f"{where}: model.dtype bfloat16 needs a CUDA GPU with bf16 (use auto or float32)")
        if dtype is torch.float16 and not h.cuda:
            raise SpecError(f"{where}: model.dtype float16 needs a CUDA GPU (use auto or float32)")
    bf16 = h.cuda and h.bf16_ok and dtype is not torch.float16
    fp16 = h.cuda and not bf16
    if spec.attn_implementation == "auto":
        attn = "flash_attention_2" if h.cuda and _has_flash_attn() and (bf16 or fp16) else "sdpa"
    else:
        attn = spec.attn_implementation
        if attn == "flash_attention_2" and not (h.cuda and _has_flash_attn()):
            raise SpecError(
                f"{where}: model.attn_implementation flash_attention_2 needs CUDA and the flash-attn "
                f"package (use auto or sdpa)"
            )
    return DeviceSettings(cuda=h.cuda, dtype=dtype, attn_implementation=attn, bf16=bf16, fp16=fp16)


def trainer_kwargs(recipe: Any, settings: DeviceSettings, output_dir: Path, config_cls: type) -> dict[str, Any]:
    """Keyword arguments of ``config_cls`` (``SFTConfig`` / ``GRPOConfig``) for ``recipe``.

    The host's precision and device first, then the recipe's ``train`` section, then its
    method section (``sft`` / ``grpo``): a key set in the recipe wins. ``gradient_checkpointing``
    becomes ``activation_checkpointing`` where the installed transformers has that field.
    ``data.eval_split`` turns evaluation on every ``save_steps`` unless ``eval_strategy`` is set.
    """
    method = "grpo" if config_cls.__name__.startswith("GRPO") else "sft"
    section = getattr(recipe, method)
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init}
    kwargs: dict[str, Any] = dict(bf16=settings.bf16, fp16=settings.fp16, use_cpu=not settings.cuda)
    kwargs.update(recipe.train.trl_kwargs())
    if section is not None:
        kwargs.update(section.trl_kwargs())
    kwargs["output_dir"] = str(output_dir)
    kwargs.pop("resume_from_checkpoint", None)  # the runner resolves it (geodata_train.sft.resume_point)
    if "activation_checkpointing" in fields and "gradient_checkpointing" in kwargs:
        kwargs.setdefault("activation_checkpointing", kwargs.pop("gradient_checkpointing"))
    if recipe.data.eval_split and "eval_strategy" not in kwargs:
        kwargs["eval_strategy"] = "steps"
        kwargs.setdefault("eval_steps", kwargs.get("save_steps"))
    kwargs["remove_unused_columns"] = False
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise SpecError(f"{recipe.where}: {', '.join(unknown)}: not fields of the installed trl.{config_cls.__name__}")
    return kwargs


def build_config(recipe: Any, settings: DeviceSettings, output_dir: Path, config_cls: type, **extra: Any) -> Any:
    """``config_cls(**trainer_kwargs(...), **extra)``; TRL's own checks become one-line SpecErrors."""
    kwargs = trainer_kwargs(recipe, settings, output_dir, config_cls)
    kwargs.update(extra)
    try:
        return config_cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{recipe.where}: {config_cls.__name__}: {str(exc).splitlines()[0]}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _image_only(name_or_path: str, **kwargs: Any) -> ImageOnlyQwenVLProcessor:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(name_or_path)
    return ImageOnlyQwenVLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )


def image_size(processor: Any) -> tuple[int | None, int | None]:
    """``(min_pixels, max_pixels)`` of a processor's image processor."""
    ip = getattr(processor, "image_processor", processor)
    size = ip.size if isinstance(ip.size, dict) else vars(ip.size)
    return size.get("shortest_edge"), size.get("longest_edge")


def set_image_size(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    """Set the image (and video) pixel bounds of a Qwen2(.5)-VL processor in place."""
    for name in ("image_processor", "video_processor"):
        ip = getattr(processor, name, None)
        if ip is None:
            continue
        size = dict(ip.size) if isinstance(ip.size, dict) else {k: v for k, v in vars(ip.size).items() if v}
        if min_pixels:
            size["shortest_edge"] = min_pixels
        if max_pixels:
            size["longest_edge"] = max_pixels
        ip.size = size
        for attr, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            if value and hasattr(ip, attr):
                setattr(ip, attr, value)


def load_processor(spec: ModelSpec, padding_side: str = "left") -> ProcessorMixin:
    """The model's processor: the stock one, or image-only for Qwen2(.5)-VL without torchvision.

    ``model.min_pixels`` / ``max_pixels`` override the image size bounds. Folders saved by
    older versions of this module (``processor_class: ImageOnlyQwenVLProcessor``) load too.
    """
    check_model(spec)
    path = spec.name_or_path
    local = Path(path)
    cfg = _read_json(local / "processor_config.json") if local.is_dir() else {}
    model_type = (_read_json(local / "config.json") if local.is_dir() else {}).get("model_type", "")
    qwen = model_type in ("qwen2_vl", "qwen2_5_vl") or "qwen2" in path.lower() and "vl" in path.lower()
    stock = has_stock_processor()
    if qwen and not stock:
        processor: Any = _image_only(path)
    elif cfg.get("processor_class") == ImageOnlyQwenVLProcessor.__name__:
        processor = Qwen2_5_VLProcessor.from_pretrained(path) if stock else _image_only(path)
    else:
        try:
            processor = AutoProcessor.from_pretrained(path)
        except OSError as exc:  # the Hub cannot be reached and the model is not cached
            if local.is_dir() or _hub_cached(path):
                raise
            raise SpecError(
                f"model '{path}' could not be downloaded ({str(exc).splitlines()[0][:200]}): download it where the "
                f"Hub is reachable (huggingface-cli download {path}), or use a local model: {_TINY}"
            ) from None
    if not isinstance(processor, ProcessorMixin):
        raise SpecError(f"{path}: AutoProcessor returned {type(processor).__name__}, not a processor")
    if spec.min_pixels or spec.max_pixels:
        set_image_size(processor, spec.min_pixels, spec.max_pixels)
    processor.tokenizer.padding_side = padding_side
    return processor


def save_processor(processor: ProcessorMixin, out: Path) -> None:
    """Save ``processor`` next to a model so that the folder loads as a whole (AutoProcessor included)."""
    processor.save_pretrained(out)


def load_model(spec: ModelSpec, settings: DeviceSettings, for_training: bool = True) -> PreTrainedModel:
    """Load the image-text-to-text model with the resolved dtype and attention."""
    check_model(spec)
    model = AutoModelForImageTextToText.from_pretrained(
        spec.name_or_path, dtype=settings.dtype, attn_implementation=settings.attn_implementation
    )
    if for_training and spec.freeze_vision:
        n = 0
        for name, param in model.named_parameters():
            if ".visual." in f".{name}":
                param.requires_grad_(False)
                n += 1
        log.info("froze %d vision-tower tensors", n)
    return model


def lora_config(spec: LoraSpec | None) -> Any:
    """A ``peft.LoraConfig`` for ``spec`` (``None`` when LoRA is off)."""
    if spec is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )
