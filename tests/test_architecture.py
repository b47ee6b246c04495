"""The rooms of geodata and what each may import (docs/architecture.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "geodata"
HEAVY = ("torch", "ray", "transformers", "trl", "vllm", "training")


def _imports(path: Path, top_level_only: bool) -> list[tuple[str, int]]:
    """Absolute module names imported by ``path`` (relative imports resolved), with line numbers."""
    tree = ast.parse(path.read_text(), str(path))
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    pkg = parts if path.name == "__init__.py" else parts[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    return out


def _modules(*rooms: str) -> list[Path]:
    return sorted(p for r in rooms for p in (PKG / r).rglob("*.py")) if rooms else sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PKG).as_posix())
def test_geodata_never_imports_torch_ray_or_training_at_import_time(path: Path) -> None:
    bad = [(m, n) for m, n in _imports(path, top_level_only=True) if m.split(".")[0] in HEAVY]
    assert not bad, f"{path.name} imports {bad} at module level"


@pytest.mark.parametrize("path", _modules("tasks"), ids=lambda p: p.relative_to(PKG).as_posix())
def test_tasks_never_import_sources_steps_or_the_engine(path: Path) -> None:
    """A task (contract, rewards, scorer) reads rows, never the readers that make them."""
    bad = [(m, n) for m, n in _imports(path, top_level_only=False)
           if m.startswith(("geodata.sources", "geodata.steps", "geodata.evaluate", "geodata.engine"))]
    assert not bad, f"{path.name} imports {bad}: tasks score rows through their contract, not readers"


@pytest.mark.parametrize("path", _modules("tasks"), ids=lambda p: p.relative_to(PKG).as_posix())
def test_tasks_never_import_torch_anywhere(path: Path) -> None:
    """Rewards run inside TRL but stay torch-free: not even a function-level import."""
    bad = [(m, n) for m, n in _imports(path, top_level_only=False) if m.split(".")[0] in HEAVY]
    assert not bad, f"{path.name} imports {bad}"


def test_every_task_of_the_builders_has_a_scorer_and_a_reward() -> None:
    """Each task value the steps write (EO_TASKS, geolocation, crossview_mcq) is registered."""
    from geodata.registry import TASKS, _load_all, reward_for_task
    from geodata.tasks.eo.contract import EO_TASKS

    _load_all()
    for t in (*EO_TASKS, "geolocation", "crossview_mcq"):
        assert t in TASKS and TASKS[t].reference, t
        assert reward_for_task(t).tasks, t


PARITY = (
    "import numpy as np\n"
    "from geodata.registry import reward, task\n"
    "from geodata.tasks.base import TaskResult, mean\n\n"
    "@reward('parity_test_reward', tasks=('parity_test',))\n"
    "def parity(completions, solutions):\n"
    "    return np.array([float(c.strip() == s) for c, s in zip(completions, solutions)])\n\n"
    "@task('parity_test', reference='(test)')\n"
    "def score(comps, sols, ctx):\n"
    "    ok = [c.strip() == s['parity'] for c, s in zip(comps, sols)]\n"
    "    return TaskResult(task='parity_test', n=len(ok), n_unparsed=0, metrics={'accuracy': mean(ok)})\n"
)


def test_a_new_task_is_one_module(tmp_path, monkeypatch) -> None:
    """Adding a task is one file in a plugin folder: its scorer and reward are found by name."""
    import importlib
    import sys

    import polars as pl

    import geodata.registry as registry
    from geodata.evaluate import evaluate

    pkg = tmp_path / "mytasks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "parity.py").write_text(PARITY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PLUGIN_PACKAGES", registry.PLUGIN_PACKAGES + ("mytasks",))
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        truth = pl.DataFrame({"id": ["a", "b"], "task": ["parity_test"] * 2,
                              "solution": ['{"parity": "odd"}', '{"parity": "even"}']})
        pred = pl.DataFrame({"id": ["a", "b"], "completion": ["odd", "odd"]})
        assert evaluate(pred, truth).tasks["parity_test"].metrics["accuracy"] == 0.5
        assert registry.reward_for_task("parity_test").name == "parity_test_reward"
    finally:
        registry.TASKS.pop("parity_test", None)
        registry.REWARDS.pop("parity_test_reward", None)
        sys.modules.pop("mytasks.parity", None)
        sys.modules.pop("mytasks", None)
        importlib.invalidate_caches()


@pytest.mark.parametrize("path", _modules("sources"), ids=lambda p: p.relative_to(PKG).as_posix())
def test_sources_never_import_steps(path: Path) -> None:
    bad = [(m, n) for m, n in _imports(path, top_level_only=False) if m.startswith("geodata.steps")]
    assert not bad, f"{path.name} imports {bad}"


def test_registry_imports_no_plugin_package() -> None:
    mods = [m for m, _ in _imports(PKG / "registry.py", top_level_only=False)]
    assert not [m for m in mods if m.startswith(("geodata.sources", "geodata.steps", "geodata.tasks"))]


def test_a_new_module_in_a_plugin_folder_is_found_without_editing_a_list(tmp_path, monkeypatch) -> None:
    """Adding a step is one file: the registry discovers it by walking its package."""
    import importlib
    import sys

    import geodata.registry as registry

    pkg = tmp_path / "myplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "shout.py").write_text(
        "import polars as pl\nfrom geodata.registry import step\n\n"
        "@step('shout_test_step', kind='map')\ndef shout(df, ctx, *, times: int = 1):\n"
        "    '''Upper-case ids.'''\n    return df.with_columns(pl.col('id').str.to_uppercase())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PLUGIN_PACKAGES", registry.PLUGIN_PACKAGES + ("myplugins",))
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        info = registry.get_step("shout_test_step")
        assert info.params.model_fields["times"].default == 1
    finally:
        registry.STEPS.pop("shout_test_step", None)
        sys.modules.pop("myplugins.shout", None)
        sys.modules.pop("myplugins", None)
        importlib.invalidate_caches()
