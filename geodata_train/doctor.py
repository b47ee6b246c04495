"""``geodata train doctor``: what is installed for training, what each recipe needs, what is missing.

Reads package versions from the installed distributions (nothing is imported but torch, and
only when it is installed, to ask about CUDA), checks them against the ``train`` and ``vllm``
extras of the installed ``geodata``, and lists per shipped recipe the optional pieces it uses:
flash-attn (``model.attn_implementation``; ``auto`` picks it on CUDA when installed), vLLM
(``grpo.use_vllm``, ``predict.engine``) and DeepSpeed (the 8-GPU ZeRO-3 launch,
``geodata_train/accelerate/zero3.yaml``).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import platform
import sys
from typing import Iterator

__all__ = ["PACKAGES", "report", "installed", "extra_requirements"]

#: the distributions the doctor reports, with the import name used to check they load
PACKAGES: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torchvision",
    "transformers": "transformers",
    "trl": "trl",
    "peft": "peft",
    "accelerate": "accelerate",
    "vllm": "vllm",
    "flash-attn": "flash_attn",
    "deepspeed": "deepspeed",
}


def installed(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (``None`` when it is not installed)."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def extra_requirements(extra: str) -> dict[str, str]:
    """``name -> specifier`` of one extra of the installed geodata (empty when unknown)."""
    try:
        reqs = md.requires("geodata") or []
    except md.PackageNotFoundError:
        return {}
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip/setuptools
        return {}
    out: dict[str, str] = {}
    for line in reqs:
        r = Requirement(line)
        if r.marker is not None and r.marker.evaluate({"extra": extra}) and not r.marker.evaluate({"extra": ""}):
            out[r.name.lower()] = str(r.specifier)
    return out


def _fits(version: str | None, spec: str) -> bool | None:
    if version is None or not spec:
        return None
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(spec).contains(version, prereleases=True)


def _cuda() -> str:
    if importlib.util.find_spec("torch") is None:
        return "torch not installed"
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA build {torch.version.cuda}" if torch.version.cuda else "CPU build"
        return f"no CUDA device ({build}): CPU, fp32"
    n = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0)
    bf16 = "bf16" if torch.cuda.is_bf16_supported() else "no bf16 (fp16 autocast)"
    return f"{n} x {name}, {bf16}"


def _recipe_needs() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """``(recipe, [(distribution, why)])`` for every shipped recipe."""
    from geodata.errors import GeodataError

    from .recipe import list_recipes, load_recipe

    for name in list_recipes():
        try:
            r = load_recipe(name)
        except GeodataError as exc:
            yield name, [("", f"invalid: {exc}")]
            continue
        needs = [("torchvision", "stock processor")]
        attn = r.model.attn_implementation
        needs.append(("flash-attn", "required" if attn == "flash_attention_2" else "used on CUDA when installed"))
        if r.grpo is not None:
            needs.append(("vllm", "grpo.use_vllm" if r.grpo.use_vllm else "optional: --set grpo.use_vllm=true"))
        elif r.sft is None:
            needs.append(("vllm", "predict.engine auto: used on CUDA when installed"))
        if r.sft is not None or r.grpo is not None:
            needs.append(("deepspeed", "8 GPUs: geodata_train/accelerate/zero3.yaml"))
        yield name, needs


def report() -> list[str]:
    """Lines for the CLI: Python, CUDA, each package (version, fits the extras), recipes, missing."""
    lines = [f"python {platform.python_version()} ({sys.platform}, {platform.machine()})", f"cuda: {_cuda()}"]
    train, vllm = extra_requirements("train"), extra_requirements("vllm")
    missing: list[str] = []
    lines.append("packages:")
    for dist in PACKAGES:
        v = installed(dist)
        spec = vllm.get(dist) if dist == "vllm" else train.get(dist, "")
        fit = _fits(v, spec or "")
        note = "" if fit is None else ("  ok" if fit else f"  outside the extra ({spec})")
        if fit is True and dist in vllm and dist != "vllm" and installed("vllm"):
            if not _fits(v, vllm[dist]):
                note = f"  outside the vllm extra ({vllm[dist]})"
        lines.append(f"  {dist:<13} {v or 'missing':<16}{spec and f' wants {spec}' or ''}{note}")
        if v is None:
            missing.append(dist)
    lines.append("recipes:")
    for name, needs in _recipe_needs():
        lines.append(f"  {name}:")
        for dist, why in needs:
            state = "" if not dist else ("installed" if installed(dist) else "MISSING")
            lines.append(f"    {dist:<12} {state:<10} {why}" if dist else f"    {why}")
    core = [d for d in ("torch", "torchvision", "transformers", "trl", "peft", "accelerate") if d in missing]
    lines.append("missing:")
    if core:
        lines.append(f"  {', '.join(core)}: pip install -e '.[train]'")
    if "vllm" in missing:
        lines.append("  vllm (GRPO/predict generation on CUDA): pip install -e '.[train,vllm]'")
    if "flash-attn" in missing:
        lines.append("  flash-attn (CUDA attention kernels): pip install flash-attn --no-build-isolation")
    if "deepspeed" in missing:
        lines.append("  deepspeed (ZeRO-3 on several GPUs): pip install deepspeed")
    if not missing:
        lines.append("  nothing")
    return lines
