"""Random-init Qwen2.5-VL models with an offline processor, for CPU smoke runs and benchmarks.

Nothing here touches the Hugging Face Hub. :func:`write_model` saves, into one folder,

* a ``Qwen2_5_VLForConditionalGeneration`` with random weights, sized by a preset
  (``tiny``: a few hundred thousand parameters; ``3b``: the Qwen2.5-VL-3B shapes), and
* the stock ``Qwen2_5_VLProcessor`` (image and video processors; needs torchvision), or
  without torchvision the image-only :class:`ImageOnlyQwenVLProcessor` (PIL image
  processor; saved as the stock class), over a byte-level BPE tokenizer that carries Qwen's
  special tokens and chat template (``3b`` pads the vocabulary to Qwen's 151,936 ids so that
  the embedding sizes match).

The folder loads with :func:`geodata_train.models.load_model` and
:func:`geodata_train.models.load_processor`, exactly like a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: written last into a tiny-model folder: only such a folder is written again
TINY_MARKER = ".geodata-tiny-model"

__all__ = ["PRESETS", "SPECIAL_TOKENS", "build_tokenizer", "build_processor", "write_model"]

#: Qwen2.5-VL special tokens, in Qwen's order (their ids differ: the vocabulary is bytes).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Model shapes. ``tiny`` trains on one CPU core in seconds; ``3b`` is Qwen2.5-VL-3B-Instruct's config.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "text": dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        "vision": dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            fullatt_block_indexes=[1],
            window_size=112,
        ),
        "tie_word_embeddings": True,
        "vocab_size": None,  # the tokenizer's size
        # 56x56 pixels: 16 patches of 14 px, merged 2x2 into 4 image tokens
        "min_pixels": 56 * 56,
        "max_pixels": 56 * 56,
    },
    "3b": {
        "text": dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        ),
        "vision": dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            fullatt_block_indexes=[7, 15, 23, 31],
            window_size=112,
        ),
        "tie_word_embeddings": True,
        "vocab_size": 151936,
        "min_pixels": 256 * 28 * 28,
        "max_pixels": 1280 * 28 * 28,
    },
}


def build_tokenizer(vocab_size: int | None = None) -> Any:
    """A byte-level BPE tokenizer (no merges) with Qwen's special tokens and pad/eos.

    Parameters
    ----------
    vocab_size
        Pad the vocabulary with unused ``<|extra_N|>`` tokens up to this size (``None``: no padding).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS),
    )
    if vocab_size is not None and vocab_size > len(fast):
        fast.add_tokens([f"<|extra_{i}|>" for i in range(vocab_size - len(fast))], special_tokens=True)
    fast.model_max_length = 131072
    return fast


def build_processor(
    min_pixels: int, max_pixels: int, vocab_size: int | None = None, stock: bool | None = None
) -> Any:
    """A Qwen2.5-VL processor over :func:`build_tokenizer`.

    ``stock`` (default: whether torchvision is importable) gives the stock
    ``Qwen2_5_VLProcessor``; otherwise the image-only one with the PIL image processor.
    """
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from .models import ImageOnlyQwenVLProcessor, has_stock_processor

    if stock is None:
        stock = has_stock_processor()
    if stock:
        from transformers import Qwen2_5_VLProcessor
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        bounds = dict(min_pixels=min_pixels, max_pixels=max_pixels)
        return Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(**bounds),
            video_processor=Qwen2VLVideoProcessor(**bounds),
            tokenizer=build_tokenizer(vocab_size),
            chat_template=qwen2_5_vl_chat_template,
        )
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    return ImageOnlyQwenVLProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(vocab_size),
        chat_template=qwen2_5_vl_chat_template,
    )


def write_model(
    out: Path, preset: str = "tiny", seed: int = 0, dtype: str = "float32", stock: bool | None = None
) -> Path:
    """Write a random-init Qwen2.5-VL model and its offline processor to ``out``.

    Parameters
    ----------
    out
        Target folder: new, empty, or one this function wrote (see :func:`save_into`).
    preset
        A key of :data:`PRESETS`.
    seed
        Seed of the random weights.
    dtype
        Storage dtype (``float32`` or ``bfloat16``).
    stock
        Stock processor (default: when torchvision is importable) or the image-only one.

    Returns
    -------
    Path
        ``out``.
    """
    from geodata.errors import SpecError

    if preset not in PRESETS:
        raise SpecError(f"unknown model preset '{preset}' (allowed: {', '.join(PRESETS)})")
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    p = PRESETS[preset]
    processor = build_processor(p["min_pixels"], p["max_pixels"], p["vocab_size"], stock=stock)
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = p["vocab_size"] or len(tok)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            p["text"],
            vocab_size=vocab,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(p["vision"]),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=p["tie_word_embeddings"],
    )
    torch.manual_seed(seed)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch_dtype)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)

    save_into(Path(out), save, f"random-init tiny Qwen2.5-VL (seed {seed})")
    return out


def save_into(out: Path, save: Any, what: str) -> None:
    """``save(folder)`` into a marked temp folder beside ``out``, then move its files into ``out``.

    ``out`` must be missing, empty, or marked by :data:`TINY_MARKER`, which lists the files
    geodata wrote there: only those are replaced or removed; the user's files stay, and one at
    a path the model writes is an OwnershipError before anything changes.
    """
    from geodata.dataset import ownership as own

    marked, listed = own.read_listing(out, TINY_MARKER)
    if out.is_symlink() or (out.exists() and (not out.is_dir() or (any(out.iterdir()) and not marked))):
        from geodata.errors import OwnershipError

        raise OwnershipError(f"{out}: exists and is not a tiny model geodata wrote (no {TINY_MARKER}); choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = own.make_temp(out)
    try:
        save(tmp)
        old = listed if listed is not None else {  # an older marker without a list: same bytes only
            f for f in own._all_files(tmp) if own._same_bytes(out / f, tmp / f)}
        own.install_files(tmp, out, old, lambda files, partial: own.write_listing(out, TINY_MARKER, files, partial, what=what),
                          "train tiny-model", "choose a new folder")
    finally:
        own.remove_temp(tmp)
