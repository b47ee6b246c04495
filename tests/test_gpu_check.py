"""benchmarks/gpu_check.py without a GPU: one clear line, exit 2, nothing run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.train
def test_gpu_check_fails_clearly_without_cuda(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "g")],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 2 and "no CUDA device is visible" in r.stderr and "nothing was run" in r.stderr
    assert not (tmp_path / "g").exists()
