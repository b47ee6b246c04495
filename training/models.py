"""Device selection, model and processor loading for the training backends.

``bf16`` and ``flash_attention_2`` are used only where CUDA (and, for the latter, the
``flash-attn`` package) is present; otherwise the model runs in fp32 with SDPA, so the same
recipe runs on a laptop CPU with a tiny model and on GPUs with the real one.
"""

from __future__ import annotations

import importlib.util
import json
import logging
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

from .recipe import LoraSpec, ModelSpec

__all__ = [
    "DeviceSettings",
    "ImageOnlyQwenVLProcessor",
    "device_settings",
    "load_processor",
    "load_model",
    "lora_config",
    "save_processor",
]

log = logging.getLogger("geodata.training")

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor without the video processor (which needs torchvision).

    Images, the chat template and the token expansion behave exactly as in the stock
    ``Qwen2_5_VLProcessor``; only video input is unsupported.
    """

    def __init__(
        self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs: Any
    ) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


@dataclass(frozen=True)
class DeviceSettings:
    """What the host supports and what the recipe asked for, resolved."""

    cuda: bool
    dtype: torch.dtype
    attn_implementation: str
    bf16: bool
    fp16: bool


def _has_flash_attn() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def device_settings(spec: ModelSpec, where: str = "model") -> DeviceSettings:
    """Resolve ``dtype`` / ``attn_implementation`` (``auto``) for this host.

    ``auto`` gives bf16 + flash-attention 2 on CUDA with ``flash-attn`` installed, bf16 + SDPA
    on CUDA without it, and fp32 + SDPA on CPU. An explicit choice the host cannot honour
    is an error.
    """
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if spec.dtype == "auto":
        dtype = torch.bfloat16 if bf16_ok else torch.float32
    else:
        dtype = _DTYPES[spec.dtype]
        if dtype is torch.bfloat16 and not bf16_ok:
            raise SpecError(f"{where}: model.dtype bfloat16 needs a CUDA GPU with bf16 (use auto or float32)")
        if dtype is torch.float16 and not cuda:
            raise SpecError(f"{where}: model.dtype float16 needs a CUDA GPU (use auto or float32)")
    if spec.attn_implementation == "auto":
        attn = "flash_attention_2" if cuda and _has_flash_attn() and dtype != torch.float32 else "sdpa"
    else:
        attn = spec.attn_implementation
        if attn == "flash_attention_2" and not (cuda and _has_flash_attn()):
            raise SpecError(
                f"{where}: model.attn_implementation flash_attention_2 needs CUDA and the flash-attn "
                f"package (use auto or sdpa)"
            )
    return DeviceSettings(
        cuda=cuda,
        dtype=dtype,
        attn_implementation=attn,
        bf16=cuda and dtype is torch.bfloat16,
        fp16=cuda and dtype is torch.float16,
    )


def trainer_kwargs(recipe: Any, settings: DeviceSettings, output_dir: Path) -> dict[str, Any]:
    """The ``TrainingArguments`` that SFT and GRPO share: the recipe's ``train`` section
    and the host's precision and device."""
    t = recipe.train
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps,
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        activation_checkpointing=t.gradient_checkpointing,
        dataloader_num_workers=t.dataloader_num_workers,
        report_to=t.report_to,
        bf16=settings.bf16,
        fp16=settings.fp16,
        use_cpu=not settings.cuda,
    )


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


def load_processor(spec: ModelSpec, padding_side: str = "left") -> ProcessorMixin:
    """The model's processor; image-only for Qwen2(.5)-VL when torchvision is missing.

    ``model.min_pixels`` / ``max_pixels`` override the image size bounds.
    """
    path = spec.name_or_path
    local = Path(path)
    cfg = _read_json(local / "processor_config.json") if local.is_dir() else {}
    if cfg.get("processor_class") == ImageOnlyQwenVLProcessor.__name__:
        processor: Any = ImageOnlyQwenVLProcessor.from_pretrained(path)
    else:
        model_type = (_read_json(local / "config.json") if local.is_dir() else {}).get("model_type", "")
        qwen = model_type in ("qwen2_vl", "qwen2_5_vl") or "qwen2" in path.lower() and "vl" in path.lower()
        if qwen and importlib.util.find_spec("torchvision") is None:
            processor = _image_only(path)
        else:
            processor = AutoProcessor.from_pretrained(path)
    ip = getattr(processor, "image_processor", None)
    if ip is not None and (spec.min_pixels or spec.max_pixels):
        size = dict(ip.size) if isinstance(ip.size, dict) else {k: v for k, v in vars(ip.size).items() if v}
        if spec.min_pixels:
            size["shortest_edge"] = spec.min_pixels
        if spec.max_pixels:
            size["longest_edge"] = spec.max_pixels
        ip.size = size
    processor.tokenizer.padding_side = padding_side
    return processor


def save_processor(processor: ProcessorMixin, out: Path) -> None:
    """Save ``processor`` next to a model so that the folder loads as a whole."""
    processor.save_pretrained(out)


def load_model(spec: ModelSpec, settings: DeviceSettings, for_training: bool = True) -> PreTrainedModel:
    """Load the image-text-to-text model with the resolved dtype and attention."""
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
