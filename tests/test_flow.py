"""The typed data flow: read-only step contexts, returned outputs, step kinds, named join inputs."""

from __future__ import annotations

import dataclasses
import json
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from geodata.context import StepContext, StepOutput
from geodata.engine import build, sample_root
from geodata.errors import SpecError
from geodata.registry import STEP_KINDS, STEPS, SOURCES, get_step
from geodata.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
MAIN = json.loads((Path(__file__).parent / "flow_main_shards.json").read_text())


def _shards(path: Path) -> dict[str, str]:
    m = json.loads((path / "manifest.json").read_text())
    return {k: v["sha256"] for k, v in m["files"].items()}


def test_step_context_is_read_only() -> None:
    ctx = StepContext(seed=3, name="sample", limits={"max_image_pixels": 10})
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.seed = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        ctx.limits["max_image_pixels"] = 20  # type: ignore[index]
    assert not hasattr(ctx, "tables") and not hasattr(ctx, "drop")
    # the generator depends on seed, name and salt only
    a = StepContext(seed=3, name="sample").rng("x").integers(0, 1 << 30, 4)
    assert a.tolist() == ctx.rng("x").integers(0, 1 << 30, 4).tolist()
    assert a.tolist() != StepContext(seed=3, name="dedupe").rng("x").integers(0, 1 << 30, 4).tolist()


def test_step_output_counts() -> None:
    out = StepOutput()
    out.drop("bad", 2)
    out.drop("bad", 0)
    out.drop("bad", -1)
    out.drop("bad", 3)
    assert out.drops == {"bad": 5}


def test_every_step_has_a_kind() -> None:
    get_step("dedupe")  # loads the plugins
    assert {s.kind for s in STEPS.values()} <= set(STEP_KINDS)
    assert get_step("validate_coords").kind == "map" and get_step("chain_of_region").kind == "map"
    assert get_step("dedupe").kind == "frame" and get_step("sample").kind == "frame"
    join = get_step("join_predictions")
    assert join.kind == "join" and join.inputs == ("predictions",) and join.optional_inputs == ("raw",)
    assert "predictions" not in join.params.model_fields  # tables are inputs, not params
    assert get_step("eo_tasks").any_inputs and get_step("concat_crossview").kind == "join"


def _hard_spec(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((REPO / "pipelines/mp16-hard-200k.yaml").read_text())
    for st in raw["steps"]:
        if st["step"] == "join_predictions":
            edit(st)
    p = tmp_path / "hard.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_join_without_its_input_fails_on_load(tmp_path: Path) -> None:
    p = _hard_spec(tmp_path, lambda st: st.pop("inputs"))
    with pytest.raises(SpecError, match=r"\(join_predictions\).*needs input 'predictions'.*\(mp16, predictions\)"):
        load_spec(p)
    p = _hard_spec(tmp_path, lambda st: st.update(inputs={"predictions": "nowhere"}))
    with pytest.raises(SpecError, match=r"inputs\.predictions: 'nowhere' is neither a source of the spec \(mp16, predictions\)"):
        load_spec(p)
    p = _hard_spec(tmp_path, lambda st: st.update(inputs={"predictions": "predictions", "extra": "mp16"}))
    with pytest.raises(SpecError, match="unknown input 'extra'"):
        load_spec(p)
    spec = load_spec(REPO / "pipelines/mp16-hard-200k.yaml", sets=["predict.base_url=null"])  # --set ids still work
    assert [s.inputs for s in spec.steps if s.key in ("predict", "join_predictions")] == [
        {"predictions": "predictions"}, {"predictions": "predict", "raw": "mp16"}]


def test_map_step_takes_no_inputs(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "pipelines/mp16-rand-500k.yaml").read_text())
    next(s for s in raw["steps"] if s["step"] == "validate_coords")["inputs"] = {"mp16": "mp16"}
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r"\(validate_coords\): inputs: a map step takes no input tables"):
        load_spec(p)


def test_drops_and_notes_reach_the_manifest_once(datasets_tmp: Path) -> None:
    res = build("crossview-pairs", out=datasets_tmp / "a")
    m = json.loads((res.path / "manifest.json").read_text())
    steps = {s["step"]: s for s in m["stats"]["steps"]}
    # a reader's drops are its own step's, as the reader returns them
    direct = SOURCES["cvusa"].fn(StepContext(name="read:cvusa"), root=sample_root("cvusa"))
    assert steps["read:cvusa"]["drops"] == direct.drops and direct.drops
    total: dict[str, int] = {}
    for s in m["stats"]["steps"]:
        for k, v in s["drops"].items():
            total[k] = total.get(k, 0) + v
    assert m["stats"]["drops"] == total == res.drops
    for k, v in direct.notes.items():
        assert m["stats"]["notes"][k] == v
    assert m["stats"]["notes"]["concat_crossview.cvact"] == 25


def test_builds_are_byte_identical_and_match_main(datasets_tmp: Path) -> None:
    versions = {"polars": "polars", "pyarrow": "pyarrow", "datasets": "datasets", "pillow": "pillow", "numpy": "numpy"}
    same_libs = all(metadata.version(d) == MAIN["versions"][k] for k, d in versions.items())
    a = build("crossview-pairs", out=datasets_tmp / "a", force=True)
    b = build("crossview-pairs", out=datasets_tmp / "b", force=True)
    assert _shards(a.path) == _shards(b.path)
    if not same_libs:
        pytest.skip("library versions differ from those the main shards were written with")
    for name, want in MAIN["builds"].items():
        res = a if name == "crossview-pairs" else build(name, out=datasets_tmp / name, force=True)
        assert _shards(res.path) == want, name


def test_steps_get_the_build_display_through_their_context(tmp_path: Path) -> None:
    """No global: the engine hands its live display to each step as ``ctx.progress``."""
    import geodata._progress as gp
    from geodata.inference import ChatResult, _Progress
    from geodata.registry import step

    assert not hasattr(gp, "_ACTIVE") and not hasattr(gp, "active")
    seen: list = []

    @step("progress_probe_test", kind="frame")
    def probe(df, ctx):  # noqa: ANN001, ANN202
        seen.append(ctx.progress)
        return StepOutput(df)

    spec = tmp_path / "probe.yaml"
    spec.write_text(yaml.safe_dump({"name": "probe", "seed": 1, "sources": {"mp16": {"reader": "mp16"}},
                                    "steps": [{"step": "progress_probe_test"}, {"step": "validate_coords"},
                                              {"step": "require_images"}, {"step": "sample", "n": 20},
                                              {"step": "reverse_geocode"}, {"step": "chain_of_region"}]}))
    try:
        build(spec, out=tmp_path / "shown", progress=True)
        build(spec, out=tmp_path / "quiet", progress=False)
    finally:
        STEPS.pop("progress_probe_test")
    assert isinstance(seen[0], gp.BuildProgress) and seen[1] is None

    class Display:  # what a step's requests bar talks to
        def __init__(self) -> None:
            self.calls: list = []

        def add_counter(self, label: str, total: int) -> str:
            self.calls.append(("add", label, total))
            return "bar"

        def update_counter(self, task: str, **kw: object) -> None:
            self.calls.append(("update", task, kw["advance"]))

    ui = Display()
    bar = _Progress("predict", 2, ui=ui)
    bar.update(ChatResult(text="x"))
    bar.close()
    assert ui.calls == [("add", "predict", 2), ("update", "bar", 1)]
