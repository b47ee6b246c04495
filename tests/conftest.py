"""Test-wide settings: offline, single-threaded, and every path under a temp folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
_SESSION = Path(tempfile.mkdtemp(prefix="geodata-tests-"))
os.environ["GEODATA_CACHE"] = str(_SESSION / "cache")
os.environ["GEODATA_DATA"] = str(_SESSION / "data")
os.environ["GEODATA_DATASETS"] = str(_SESSION / "datasets")
os.environ["GEODATA_RUNS"] = str(_SESSION / "runs")  # where builds look for `geodata predict` outputs
os.environ["HF_DATASETS_CACHE"] = str(_SESSION / "hf-datasets")
os.environ["HF_HOME"] = str(_SESSION / "hf-home")
for var in ("MP16_ROOT", "PREDICTIONS", "SAMPLE_N", "MP16_IMAGES", "IM2GPS3K_ROOT", "YFCC4K_ROOT"):
    os.environ.pop(var, None)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION


@pytest.fixture()
def datasets_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Build into a fresh datasets folder for this test."""
    out = tmp_path / "datasets"
    monkeypatch.setenv("GEODATA_DATASETS", str(out))
    return out


@pytest.fixture(scope="session")
def mp16_small(session_dir: Path) -> Path:
    """An MP-16-format root (400 rows + planted bad rows) with all three image layouts."""
    from geodata.sources.mp16 import write_sample

    root = session_dir / "mp16-small"
    if not root.exists():
        write_sample(root / "folder", n=400, layouts=("folder",))
        write_sample(root / "msgpack", n=400, layouts=("msgpack",))
        write_sample(root / "tar", n=400, layouts=("tar",))
    return root
