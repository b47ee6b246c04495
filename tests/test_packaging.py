"""What ``pip install .`` installs: the packages pyproject's ``packages.find`` selects (no network, no build)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def _installed_packages() -> list[str]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return find_packages(str(ROOT), include=conf["include"], exclude=conf.get("exclude", ()))


def test_install_ships_geodata_and_geodata_train_only():
    pkgs = _installed_packages()
    assert "geodata" in pkgs and "geodata_train" in pkgs and "geodata.sources.eo" in pkgs
    assert not [p for p in pkgs if p.split(".")[0] not in ("geodata", "geodata_train")], pkgs
    assert not [p for p in pkgs if p.split(".")[0] == "training" or p.split(".")[-1].startswith("bench")], pkgs
    assert not list((ROOT / "geodata").glob("bench*.py"))  # benchmarks live in benchmarks/, outside the wheel


def test_public_api_is_lazy_and_complete():
    code = ("import sys, geodata\n"
            "names = ['Dataset', 'step', 'source', 'reward', 'StepContext', 'StepOutput', 'build', 'load_spec']\n"
            "assert set(names) <= set(geodata.__all__), geodata.__all__\n"
            "objs = [getattr(geodata, n) for n in names]\n"
            "from geodata.context import StepOutput\n"
            "assert geodata.StepOutput is StepOutput\n"
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
