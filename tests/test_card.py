"""One card renderer: build, report and publish each own a named section of README.md."""

from __future__ import annotations

import pytest

from geodata.dataset.card import SECTIONS, Card, markers
from geodata.dataset import Dataset, DatasetError
from geodata.engine import build
from geodata.errors import GeodataError
from geodata.publish import publish
from geodata.report import make_report

PIPE = "mp16-rand-500k"


@pytest.fixture()
def mp16(mp16_small, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    return mp16_small / "folder"


def _mine(folder, names=("notes.md", "report/my-figure.png")) -> dict[str, bytes]:
    """Plant user files in ``folder``; return them as ``{relative path: bytes}``."""
    out = {}
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        (folder / n).write_bytes(f"mine: {n}".encode())
        out[n] = (folder / n).read_bytes()
    return out


def _still(folder, planted: dict[str, bytes]) -> bool:
    return all((folder / n).is_file() and (folder / n).read_bytes() == b for n, b in planted.items())


def _order(text: str) -> list[str]:
    found = [(text.index(markers(n)[0]), n) for n in SECTIONS if markers(n)[0] in text]
    return [n for _, n in sorted(found)]


def test_sections_render_in_one_order_whatever_the_order_they_were_set() -> None:
    a = Card({"license": "mit"}).with_section("publish", "P").with_section("build", "B").with_section("report", "R")
    b = Card({"license": "mit"}).with_section("report", "R").with_section("build", "B").with_section("publish", "P")
    assert a.render() == b.render()
    assert _order(a.render()) == ["build", "report", "publish"]
    # a plugin's section comes after the known ones; replacing a section never repeats it
    c = a.with_section("zz-extra", "Z").with_section("report", "R2")
    text = c.render()
    assert text.index(markers("zz-extra")[0]) > text.index(markers("publish")[0])
    assert text.count(markers("report")[0]) == 1 and "R2" in text and "\nR\n" not in text


def test_unmarked_text_is_kept_before_the_sections() -> None:
    hand = "---\nlicense: mit\n---\n# My own card\n\nWritten by hand.\n"
    card = Card.parse(hand).with_section("report", "## Report")
    text = card.render()
    assert text.index("Written by hand.") < text.index(markers("report")[0])
    assert Card.parse(text).text == "# My own card\n\nWritten by hand."
    assert Card.parse(text).header == {"license": "mit"}


def test_a_bad_header_is_one_line() -> None:
    with pytest.raises(GeodataError, match="invalid yaml header"):
        Card.parse("---\nlicense: [mit\n---\n# x\n")
    with pytest.raises(GeodataError, match="never closed"):
        Card.parse("---\nlicense: mit\n# x\n")


def test_rebuild_keeps_a_current_report_and_drops_a_stale_one(mp16, tmp_path) -> None:
    out = tmp_path / "ds"
    build(PIPE, sets=["sample.n=10"], out=out)
    assert list(Dataset.open(out).card.sections) == ["build"]
    make_report(out)
    ds = Dataset.open(out)
    assert ds.report_is_current() and list(ds.card.sections) == ["build", "report"]
    recorded = {f: (out / f).read_bytes() for f in ds.report.files}
    inside, beside = _mine(out), _mine(tmp_path, ("ds-notes.txt", ".ds.old-1/keep.txt"))
    assert any(f.endswith(".png") for f in recorded)
    section = ds.card.sections["report"]

    # same rows, new card text: a rebuild, and the report stays (files, record, section)
    res = build(PIPE, sets=["sample.n=10", "card.description=Same rows in new words."], out=out)
    assert res.status == "built"
    ds = Dataset.open(out)
    assert "Same rows in new words." in ds.card.sections["build"]
    assert ds.card.sections["report"] == section and ds.report_is_current()
    assert {f: (out / f).read_bytes() for f in ds.report.files} == recorded
    text = ds.card_path.read_text()
    assert _order(text) == ["build", "report"] and text.count(markers("report")[0]) == 1
    assert _still(out, inside) and _still(tmp_path, beside)  # carrying the report moved nothing of theirs

    # other rows: the figures would be wrong, so figures, record and section go
    build(PIPE, sets=["sample.n=11"], out=out)
    ds = Dataset.open(out)
    assert ds.report is None and "report" not in ds.card.sections
    assert sorted(p.name for p in (out / "report").iterdir()) == ["my-figure.png"]  # only the user's file stays
    assert _still(out, inside) and _still(tmp_path, beside)


def test_publish_adds_its_section_after_build_and_report(mp16, tmp_path) -> None:
    out = tmp_path / "ds"
    build(PIPE, sets=["sample.n=10"], out=out)
    make_report(out)
    built = Dataset.open(out).card
    folder = publish(out, "org/x", dry_run=True, out=tmp_path / "hub", images=False).folder
    text = (folder / "README.md").read_text()
    assert _order(text) == ["build", "report", "publish"]
    card = Card.parse(text)
    assert card.sections["build"] == built.sections["build"] and card.sections["report"] == built.sections["report"]
    assert "## Licenses" in card.sections["publish"]
    for f in Dataset.open(out).report.files:  # the recorded report files travel, nothing else of report/
        assert (folder / f).is_file()
    assert publish(out, "org/x", dry_run=True, out=tmp_path / "hub", images=False).folder == folder
    assert (folder / "README.md").read_text() == text  # idempotent
    assert Dataset.open(out).card == built  # publishing never edits the dataset's own card


def test_publish_never_ships_other_files_in_report(mp16, tmp_path) -> None:
    out = tmp_path / "ds"
    build(PIPE, sets=["sample.n=10"], out=out)
    make_report(out)
    (out / "report" / "private-notes.md").write_text("not for the Hub")
    folder = publish(out, "org/x", dry_run=True, out=tmp_path / "hub", images=False).folder
    assert not (folder / "report" / "private-notes.md").exists()


def test_dataset_card_errors_name_the_file(tmp_path) -> None:
    from dataset_fixture import make_dataset

    folder = make_dataset(tmp_path / "datasets", name="c", n=3, shards=1)
    (folder / "README.md").write_text("---\nlicense: [mit\n---\n")
    with pytest.raises(DatasetError, match=r"README.md: invalid yaml header"):
        _ = Dataset.open(folder).card
    (folder / "README.md").unlink()
    assert Dataset.open(folder).card == Card()


def test_publish_refuses_a_user_file_where_it_would_put_a_figure(mp16, tmp_path) -> None:
    from geodata.errors import OwnershipError

    out, hub = tmp_path / "ds", tmp_path / "hub"
    build(PIPE, sets=["sample.n=10"], out=out)
    publish(out, "org/x", dry_run=True, out=hub, images=False)  # a first assembly, no report yet
    planted = _mine(hub, ("report/summary.md",))  # the user's notes, where the report's summary goes
    make_report(out)
    with pytest.raises(OwnershipError, match=r"holds files geodata did not put there \(report/summary.md\)"):
        publish(out, "org/x", dry_run=True, out=hub, images=False)
    assert _still(hub, planted)
    (hub / "report" / "summary.md").unlink()
    publish(out, "org/x", dry_run=True, out=hub, images=False)
    # an identical file at a path geodata writes is no obstacle (an earlier or interrupted assembly)
    assert publish(out, "org/x", dry_run=True, out=hub, images=False).folder == hub
