"""Shared, on-disk-cached inputs of the training tests (tests/test_training*.py).

Each is built once per test session into ``session_dir/training-shared`` and reused by every
module that asks (a module-level fixture would otherwise rebuild it per module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: Settings that make any recipe run in seconds on one CPU core with the tiny model.
FAST = [
    "train.gradient_accumulation_steps=1",
    "train.gradient_checkpointing=false",
    "train.logging_steps=1",
    "train.save_steps=10000",
    "train.warmup_steps=0",
    "model.max_pixels=3136",
]


def shared_dir(session_dir: Path) -> Path:
    d = session_dir / "training-shared"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def mp16_rows(session_dir: Path) -> Path:
    """MP16-Rand-500K at sample scale (16 rows), built by the pipeline."""
    from geodata.engine import build

    out = shared_dir(session_dir) / "mp16-rand-500k"
    if not (out / "data").is_dir():
        res = build("mp16-rand-500k", sets=["sample.n=16"], out=out, force=True)
        assert res.rows == 16
    return out


@pytest.fixture(scope="session")
def tiny_model(session_dir: Path) -> Path:
    """The tiny random Qwen2.5-VL with the processor this host builds (stock with torchvision)."""
    from geodata_train.tiny import write_model

    out = shared_dir(session_dir) / "tiny"
    if not (out / "model.safetensors").is_file():
        write_model(out, preset="tiny", seed=0)
    return out


class StopAfter:
    """A TrainerCallback factory: raises after global step ``k`` (a simulated kill)."""

    def __new__(cls, k: int) -> Any:
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if state.global_step >= k:
                    raise KeyboardInterrupt(f"killed after step {k}")

        return _Stop()
