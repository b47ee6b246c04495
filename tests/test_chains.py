"""Reproduce chains (geodata/chains.py): stamped stages skip when current, rerun when an input
changed or a stage was killed, print every command; the three tiny chains run end to end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from geodata.chains import STAMP, load_chain, plan, run_chain
from geodata.errors import GeodataError, SpecError

REPO = Path(__file__).resolve().parent.parent

FAKE = """
name: fake
paper: a test
profiles:
  quick: {{py: "{py}", n: 1, sets: [a=1, b=2]}}
stages:
  - id: make
    what: writes a file
    run: "{{py}} -c \\"import pathlib; pathlib.Path('{{out}}/x.txt').write_text('{{n}}')\\""
    outputs: [x.txt]
  - id: use
    after: [make]
    run: "{{py}} -c \\"import pathlib; pathlib.Path('{{out}}/y.txt').write_text(pathlib.Path('{{runs}}/make/x.txt').read_text())\\" {{sets}}"
    outputs: [y.txt]
  - id: touch
    after: [use]
    run: "{{py}} -c \\"import pathlib; pathlib.Path('{{runs}}/use/extra.txt').write_text('new'); pathlib.Path('{{out}}/z').write_text('z')\\""
  - id: fail
    after: [use]
    run: "{{py}} -c \\"raise SystemExit(3)\\""
"""


@pytest.fixture()
def fake(tmp_path: Path) -> Path:
    p = tmp_path / "fake.yaml"
    p.write_text(FAKE.format(py=sys.executable))
    return p


def test_stages_run_skip_when_current_and_rerun_after_an_input_changes(fake: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    lines: list[str] = []
    with pytest.raises(GeodataError, match=r"stage 'fail' failed \(exit 3\).*run it by hand: .* -c"):
        run_chain(fake, "quick", runs=runs, echo=lines.append)
    assert (runs / "use" / "y.txt").read_text() == "1" and (runs / "use" / STAMP).is_file()
    assert not (runs / "fail" / STAMP).exists()
    assert any("$ " in ln and "--set a=1 --set b=2" in ln for ln in lines)  # the command is printed
    # killed / failed stages rerun, finished ones are skipped
    assert run_chain(fake, "quick", runs=runs, stage="touch", echo=lines.append) == [
        ("make", "current"), ("use", "current"), ("touch", "current")]  # touch rewrote what it read: still current
    # an upstream output rewritten unchanged keeps the stages reading it current; changed, they run again
    x = runs / "make" / "x.txt"
    x.write_text("1")
    os.utime(x, ns=(x.stat().st_mtime_ns + 10**9,) * 2)
    assert run_chain(fake, "quick", runs=runs, stage="use", echo=lines.append)[-1] == ("use", "current")
    x.write_text("2")
    assert run_chain(fake, "quick", runs=runs, stage="use", echo=lines.append) == [("make", "current"), ("use", "ran")]
    assert (runs / "use" / "y.txt").read_text() == "2"
    # a missing output is not current either
    (runs / "use" / "y.txt").unlink()
    assert run_chain(fake, "quick", runs=runs, stage="use", echo=lines.append)[-1] == ("use", "ran")
    with pytest.raises(SpecError, match="no stage 'nope'"):
        run_chain(fake, "quick", runs=runs, stage="nope")
    with pytest.raises(SpecError, match="unknown profile 'paper'"):
        run_chain(fake, "paper", runs=runs)


def test_a_chain_keeps_user_files_in_its_folders(fake: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "make").mkdir(parents=True)
    (runs / "make" / "notes.txt").write_text("mine")
    run_chain(fake, "quick", runs=runs, stage="use", echo=lambda *_: None)
    assert (runs / "make" / "notes.txt").read_text() == "mine"
    (runs / "use" / STAMP).write_text("my own file")  # not geodata's stamp: never replaced
    (runs / "make" / "x.txt").write_text("3")
    with pytest.raises(GeodataError, match="not a stamp geodata wrote"):
        run_chain(fake, "quick", runs=runs, stage="use", echo=lambda *_: None)
    assert (runs / "use" / STAMP).read_text() == "my own file"


def test_the_three_chains_render_for_both_profiles() -> None:
    for name in ("geo-r", "geo-r1", "geovlm-r1"):
        chain = load_chain(name)
        tiny, paper = plan(chain, "tiny"), plan(chain, "paper")
        assert [s.stage.id for s in tiny][0] == "tiny-model" and "tiny-model" not in [s.stage.id for s in paper]
        assert all(s.folder.parts[:2] == ("runs", name) for s in tiny)
        assert all(s.argv[0] == "geodata" for s in tiny + paper)
    geo_r = {s.stage.id: s for s in plan(load_chain("geo-r"), "paper")}
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in geo_r["base-preds"].command  # the paper's hotspot model
    assert geo_r["eval-im2gps3k"].command.endswith("--compare geo-r --out runs/geo-r/eval-im2gps3k/report.json")
    assert list(geo_r)[-1] == "eval-im2gps3k"  # the chain ends with Geo-R's table beside the run
    assert geo_r["hard-200k"].env == {"PREDICTIONS": "runs/geo-r/base-preds/predictions.parquet"}


def test_chains_command_lists_stages_and_names_errors(capsys) -> None:
    from geodata.chains import main

    assert main(["geo-r1", "--profile", "paper", "--list"]) == 0
    out = capsys.readouterr().out
    assert " 4. grpo:" in out and "$ geodata train grpo geo-r1-grpo" in out
    assert main(["nope", "--list"]) == 1 and "unknown chain 'nope'" in capsys.readouterr().err


@pytest.mark.train
def test_three_tiny_chains_run_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    for name in ("geo-r", "geo-r1", "geovlm-r1"):
        report = run_chain(name, "tiny")
        assert {s for _, s in report} == {"ran"}
    out = capfd.readouterr().out
    assert "IM2GPS3K - main" in out and ">" in out and "this run" in out  # Geo-R's table with the run's row
    assert (tmp_path / "runs" / "geo-r" / "eval-im2gps3k" / "report.json").is_file()
    assert {s for _, s in run_chain("geo-r", "tiny")} == {"current"}
