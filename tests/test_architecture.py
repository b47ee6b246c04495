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


# -- the rooms table of docs/architecture.md, checked on the whole import graph -------------------

#: the answer contracts of the task rooms: how rows are written and read back. Readers and steps
#: import them, so they sit in the core; the rest of a task module (rewards, scorer) is a plugin
CONTRACTS = ("geodata.tasks.base", "geodata.tasks.eo.contract", "geodata.tasks.geolocation.parse")

#: room -> its modules (prefixes of dotted names); the order of ROOMS is the order of the layers
#: below: a module may import its own room and the rooms of lower layers, never a higher one
ROOMS: dict[str, tuple[str, ...]] = {
    "core": ("geodata", "geodata.errors", "geodata.geo", "geodata.geocode", "geodata.context", "geodata.schema",
             "geodata.spec", "geodata.registry", "geodata.images", "geodata.image_geometry",
             "geodata._cache", "geodata._progress", "geodata.hotspots", "geodata.inference", "geodata.paths",
             "geodata.predictions", "geodata.runners", "geodata.truth_files", *CONTRACTS),
    "dataset": ("geodata.dataset", "geodata.samples"),
    "sources": ("geodata.sources",),
    "steps": ("geodata.steps",),
    "tasks": ("geodata.tasks",),
    "formats": ("geodata.formats",),
    "engine": ("geodata.engine",),
    "commands": ("geodata.check", "geodata.validate", "geodata.report", "geodata.publish", "geodata.evaluate",
                 "geodata.sql", "geodata.shell", "geodata.cli", "geodata.compare", "geodata.chains"),
}
#: room -> layer; the plugin rooms share one layer and never import each other
LAYER = {"core": 0, "dataset": 1, "sources": 2, "steps": 2, "tasks": 2, "formats": 2, "engine": 3, "commands": 4}
#: rooms a room may import besides its own and the lower layers' (none: every rule is the table)
PLUGIN_ROOMS = ("sources", "steps", "tasks", "formats")
#: what a room never imports although the layers alone would allow it
NEVER: dict[str, tuple[str, ...]] = {
    "contracts": ("geodata.sources", "geodata.steps"),  # a contract is below every scorer and reader
    "steps": ("geodata.dataset",),  # a step sees rows, never the folder they end up in
    "tasks": ("geodata.dataset", "geodata.samples"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in _modules()}


def _runtime_imports(path: Path) -> set[str]:
    """geodata modules ``path`` imports at any depth (``if TYPE_CHECKING:`` blocks aside)."""
    tree = ast.parse(path.read_text(), str(path))
    name = _module_name(path)
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = (".".join(pkg[: len(pkg) - child.level + 1] + ([child.module] if child.module else []))
                        if child.level else child.module or "")
                out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names)
            visit(child)

    visit(tree)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {m: _runtime_imports(p) for m, p in MODULES.items()}


def _room(module: str) -> str:
    best = max(((room, pre) for room, pres in ROOMS.items() for pre in pres
                if module == pre or module.startswith(pre + ".")), key=lambda rp: len(rp[1]), default=None)
    assert best is not None, f"{module} is in no room of docs/architecture.md: add it to ROOMS and the table"
    return best[0]


def test_every_module_is_in_a_room() -> None:
    for m in MODULES:
        _room(m)


def test_no_import_circle_among_geodata_modules() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module: str) -> None:
    """A module imports its own room and lower layers only; plugin rooms never import each other."""
    room = _room(module)
    bad = []
    for dep in sorted(GRAPH[module]):
        other = _room(dep)
        if other == room:
            continue
        if LAYER[other] > LAYER[room] or (LAYER[other] == LAYER[room] and other in PLUGIN_ROOMS):
            bad.append(f"{dep} ({other})")
    assert not bad, f"{module} ({room}) imports upward or across: {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_rooms_never_import_what_the_table_forbids(module: str) -> None:
    sub = "contracts" if module.startswith(CONTRACTS) else _room(module)
    bad = [d for d in GRAPH[module] if d.startswith(tuple(p + "." for p in NEVER.get(sub, ())) + NEVER.get(sub, ()))]
    assert not bad, f"{module} imports {bad}"


def test_only_the_cli_entry_point_imports_the_cli() -> None:
    assert not [m for m, deps in GRAPH.items() if not m.startswith("geodata.cli") and any(
        d == "geodata.cli" or d.startswith("geodata.cli.") for d in deps)]


def test_engine_reaches_plugins_only_through_the_registry() -> None:
    """The engine imports no source, step, task or format module: it looks them up by name."""
    engine = [m for m in MODULES if m.startswith("geodata.engine")]
    assert engine and not [(m, d) for m in engine for d in GRAPH[m] if _room(d) in PLUGIN_ROOMS]


def test_runners_import_ray_inside_functions_only() -> None:
    for path in _modules("runners"):
        assert not [m for m, _ in _imports(path, top_level_only=True) if m.split(".")[0] == "ray"], path


def test_only_the_cli_reaches_geodata_train_and_only_inside_a_command() -> None:
    """``geodata train ...`` imports the backends in the command's body (top level: see above)."""
    assert (PKG.parent / "geodata_train" / "__init__.py").is_file()
    users = {_module_name(p) for p in _modules() for m, _ in _imports(p, top_level_only=False)
             if m.split(".")[0] == "geodata_train"}
    assert users and all(u == "geodata.cli" or u.startswith("geodata.cli.") for u in users), users


#: modules that read environment variables other than through geodata.paths, and why
ENV_READERS = {
    "geodata.paths": "every path default and its variable",
    "geodata.spec": "a spec's own ${VAR} interpolation",
    "geodata.inference": "the API key variable a spec names",
    "geodata.runners.ray": "Ray's RAY_ADDRESS",
    "geodata.chains": "the values of a chain's watched variables (its fingerprint), PROFILE, and the environment its stages run in",
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_one_module_owns_the_path_variables(module: str) -> None:
    text = MODULES[module].read_text()
    reads = any(k in text for k in ("os.environ", "os.getenv", "getenv("))
    assert not reads or module in ENV_READERS, f"{module} reads the environment: use geodata.paths"


def test_build_fits_a_screen() -> None:
    """build() reads as plan → read → steps → write → swap in; its stages live in geodata/engine/*.py."""
    import inspect

    from geodata.engine import build

    src = inspect.getsource(build)
    assert len(src.splitlines()) < 60
    order = [src.index(s) for s in ("make_plan(", "read_sources(", "run_steps(", "write_dataset(", "swap_in(")]
    assert order == sorted(order)
