"""Map steps run in chunks fixed by the plan; chunk outputs merge by one rule; parallel=False opts out.

The runners' byte-identity on chunked map steps is tested in tests/test_runners.py.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geodata import registry
from geodata.context import StepContext, StepOutput
from geodata.engine import Flow, run_steps
from geodata.errors import BuildError
from geodata.spec import load_spec

CALLS: list[tuple[str, int, int]] = []  # (step key, rows, ctx.part) of each call


@pytest.fixture()
def test_steps():
    """Map steps registered for one test: one parallel, one parallel=False, two that break the rule."""

    def chunked(df, ctx, *, fact: str = "same"):
        """Counts its rows; notes a count and a fact."""
        CALLS.append((ctx.name, df.height, ctx.part))
        out = StepOutput()
        out.drop("not_sampled", int(df.height > 3))
        out.note(f"{ctx.name}.rows", df.height)
        out.note(f"{ctx.name}.kind", fact if ctx.part == 0 else fact.replace("differs", "differs!"))
        out.note(f"{ctx.name}.flag", True)
        return out.result(df.with_columns(part=pl.lit(ctx.part)))

    def whole(df, ctx):
        """Sees the whole frame."""
        CALLS.append((ctx.name, df.height, ctx.part))
        return df.with_columns(whole=pl.lit(df.height))

    def emits(df, ctx):
        """A map step that emits a table (must be a frame step)."""
        out = StepOutput()
        out.emit("extra", df.head(1))
        return out.result(df)

    names = {"_t_chunked": (chunked, True), "_t_whole": (whole, False), "_t_emits": (emits, True)}
    for name, (fn, parallel) in names.items():
        registry.step(name, kind="map", parallel=parallel)(fn)
    CALLS.clear()
    yield
    for name in names:
        registry.STEPS.pop(name, None)


def _run(tmp_path: Path, steps: str, rows: int, chunk: int) -> tuple[pl.DataFrame, Flow, list]:
    spec_file = tmp_path / "t.yaml"
    spec_file.write_text(f"name: t\nseed: 3\nsources:\n  src:\n    reader: mp16\nsteps:\n{steps}\n"
                         f"output:\n  map_chunk_rows: {chunk}\n")
    spec = load_spec(spec_file)
    flow = Flow(seed=spec.seed, spec_path=spec.path)
    flow.tables["src"] = pl.DataFrame({"id": [f"r{i:03d}" for i in range(rows)]})
    df, stats = run_steps(spec, flow)
    return df, flow, stats


def test_map_chunks_are_fixed_by_the_plan_and_merge_by_the_rule(tmp_path, test_steps):
    df, flow, stats = _run(tmp_path, "  - step: _t_chunked\n    id: a\n", rows=17, chunk=7)
    assert CALLS == [("a", 7, 0), ("a", 7, 1), ("a", 3, 2)]  # consecutive chunks, in order
    assert df["id"].to_list() == [f"r{i:03d}" for i in range(17)]
    assert df["part"].to_list() == [0] * 7 + [1] * 7 + [2] * 3
    assert stats[0].drops == {"not_sampled": 2}  # drops add up
    # an int note is a count (adds up); a bool or a string is a fact (equal in every chunk)
    assert flow.notes == {"a.rows": 17, "a.kind": "same", "a.flag": True}


def test_a_frame_within_one_chunk_is_one_call_with_part_0(tmp_path, test_steps):
    _, flow, _ = _run(tmp_path, "  - step: _t_chunked\n    id: a\n", rows=7, chunk=7)
    assert CALLS == [("a", 7, 0)]
    assert flow.notes["a.rows"] == 7


def test_a_fact_that_differs_between_chunks_fails_naming_step_and_key(tmp_path, test_steps):
    with pytest.raises(BuildError, match=r"step 'a': note 'a\.kind' differs between chunks \('differs' in chunk 0, "
                                         r"'differs!' in chunk 1\)"):
        _run(tmp_path, "  - step: _t_chunked\n    id: a\n    fact: differs\n", rows=9, chunk=4)


def test_a_map_step_may_not_emit_tables(tmp_path, test_steps):
    with pytest.raises(BuildError, match=r"step '_t_emits': a map step may not emit or provide tables "
                                         r"\(got extra in chunk 0\); .* kind='frame'"):
        _run(tmp_path, "  - step: _t_emits\n", rows=9, chunk=4)


def test_parallel_false_runs_once_on_the_whole_frame(tmp_path, test_steps):
    df, _, _ = _run(tmp_path, "  - step: _t_chunked\n    id: a\n  - step: _t_whole\n", rows=10, chunk=3)
    assert CALLS[-1] == ("_t_whole", 10, 0) and [c for c in CALLS if c[0] == "_t_whole"] == [CALLS[-1]]
    assert len([c for c in CALLS if c[0] == "a"]) == 4
    assert df["whole"].unique().to_list() == [10]
    assert registry.get_step("teacher_rationale").parallel is False
    assert registry.get_step("geo_r1_scaffold").parallel and registry.get_step("chain_of_region").parallel
    assert not registry.get_step("dedupe").parallel  # frame steps are never chunked
    with pytest.raises(ValueError, match="parallel=False is for map steps"):
        registry.step("_t_frame", kind="frame", parallel=False)


def test_step_context_pickles_and_part_0_draws_as_before():
    ctx = StepContext(seed=5, name="scaffold", limits={"max_image_pixels": 9}, spec_path=Path("p.yaml"), part=3)
    back = pickle.loads(pickle.dumps(ctx))
    assert back == ctx and back.limits["max_image_pixels"] == 9
    with pytest.raises(TypeError):
        back.limits["max_image_pixels"] = 1  # type: ignore[index]
    legacy = hashlib.sha256(b"5/scaffold/t").digest()
    want = np.random.default_rng(int.from_bytes(legacy[:8], "little")).integers(0, 1 << 30, 8).tolist()
    assert StepContext(seed=5, name="scaffold", part=0).rng("t").integers(0, 1 << 30, 8).tolist() == want
    draws = {p: StepContext(seed=5, name="scaffold", part=p).rng("t").integers(0, 1 << 30, 8).tolist()
             for p in range(4)}
    assert len({tuple(v) for v in draws.values()}) == 4  # every chunk draws its own


def test_map_chunk_rows_must_be_positive(tmp_path):
    from geodata.errors import SpecError

    spec_file = tmp_path / "t.yaml"
    spec_file.write_text("name: t\nsources:\n  src:\n    reader: mp16\noutput:\n  map_chunk_rows: 0\n")
    with pytest.raises(SpecError, match="map_chunk_rows"):
        load_spec(spec_file)
