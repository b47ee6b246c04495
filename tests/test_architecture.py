"""The rooms of geodata and what each may import (docs/architecture.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "geodata"
HEAVY = ("torch", "ray", "transformers", "trl", "vllm", "geodata_train", "training")


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


@pytest.mark.parametrize("path", _modules("rewards", "contracts"), ids=lambda p: p.relative_to(PKG).as_posix())
def test_rewards_and_contracts_never_import_sources_or_steps(path: Path) -> None:
    bad = [(m, n) for m, n in _imports(path, top_level_only=False)
           if m.startswith(("geodata.sources", "geodata.steps"))]
    assert not bad, f"{path.name} imports {bad}: rewards score rows through geodata.contracts, not readers"


@pytest.mark.parametrize("path", _modules("sources"), ids=lambda p: p.relative_to(PKG).as_posix())
def test_sources_never_import_steps(path: Path) -> None:
    bad = [(m, n) for m, n in _imports(path, top_level_only=False) if m.startswith("geodata.steps")]
    assert not bad, f"{path.name} imports {bad}"


def test_registry_imports_no_plugin_package() -> None:
    mods = [m for m, _ in _imports(PKG / "registry.py", top_level_only=False)]
    assert not [m for m in mods if m.startswith(("geodata.sources", "geodata.steps", "geodata.rewards"))]


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
