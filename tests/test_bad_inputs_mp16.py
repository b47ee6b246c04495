"""Broken and unusual MP-16 inputs: each gives a one-line error (exit 2) or a counted drop.

One table: case id, the setup that plants the input, the command, the expected exit code,
the drop counts the build must record, and a regex the output (or the build notes) must match.
"""

from __future__ import annotations

import gzip
import re
import json
import os
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

import mp16_fixtures as fx
from geodata.cli import app

BUILD = ["build", "mp16-rand-500k", "--set", "sample.n=100"]


def _folder(root: Path, rows: list[str], files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mp16_places365.csv").write_text(fx.HEADER + "\n" + "".join(r + "\n" for r in rows))
    for rel, data in files.items():
        p = root / "images" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _good_rows(ids: list[str]) -> list[str]:
    return [fx._row(i, k, *fx.PHOTOS[k % 10][3:]) for k, i in enumerate(ids)]


def symlinked_subfolder(tmp: Path) -> Path:
    root = _folder(tmp / "mp16", _good_rows(fx.ids()), {})
    disk2 = tmp / "disk2"
    for i, img_id in enumerate(fx.ids()):
        p = disk2 / img_id
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(fx.jpeg(i))
    (root / "images").mkdir()
    for d in sorted({i.split("/")[0] for i in fx.ids()}):
        os.symlink(disk2 / d, root / "images" / d)  # images/aa -> /disk2/aa
    os.symlink("..", disk2 / "34" / "loop")  # a loop: images/34/loop -> images/
    return root


def exact_before_fallback(tmp: Path) -> Path:
    # aa/bb_cc.jpg has its image; aa_bb/cc.jpg must not get the same one
    return _folder(tmp / "mp16", _good_rows(["aa/bb_cc.jpg", "aa_bb/cc.jpg", "34_8d_9.jpg"]),
                   {"aa/bb_cc.jpg": fx.jpeg(1), "34/8d/9.jpg": fx.jpeg(2)})


def ambiguous_fallback(tmp: Path) -> Path:
    return _folder(tmp / "mp16", _good_rows(["aa_bb_cc.jpg"]), {"aa/bb_cc.jpg": fx.jpeg(1), "aa_bb/cc.jpg": fx.jpeg(2)})


def _csv(text: bytes) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        root = _folder(tmp / "mp16", [], {"34/8d/9055806529.jpg": fx.jpeg(0)})
        (root / "mp16_places365.csv").write_bytes(text)
        return root

    return setup


_H = fx.HEADER.encode() + b"\n"
_R = fx._row(fx.ids()[0], 0, 48.8, 2.3).encode() + b"\n"


def _shards(mangle: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        res = fx.geoestimation(tmp, missing=())
        s = res / "images" / "mp16" / "shard_1.msg"
        s.write_bytes(mangle(s.read_bytes()))
        return res

    return setup


def _record_len() -> int:
    import msgpack

    return len(msgpack.packb({"image": fx.jpeg(5), "id": fx.ids()[5]}))


def _tar(mangle: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        root = fx.mp16pro(tmp)
        t = root / "mp-16-images.tar"
        t.write_bytes(mangle(t.read_bytes()))
        return root

    return setup


def two_releases(tmp: Path) -> Path:
    fx.geoestimation(tmp / "above")
    fx.mp16pro(tmp / "above")
    return tmp / "above"


def no_matching_images(tmp: Path) -> Path:
    return _folder(tmp / "mp16", _good_rows(fx.ids()), {"other/1.jpg": fx.jpeg(1)})


def shard_folder_as_root(tmp: Path) -> Path:
    return fx.geoestimation(tmp) / "images" / "mp16"


def tar_gz(tmp: Path) -> Path:
    root = _folder(tmp / "mp16", _good_rows(fx.ids()), {})
    (root / "mp16-000.tar.gz").write_bytes(gzip.compress(fx._tar_bytes([(f"mp16/{fx.ids()[0]}", fx.jpeg(0))])))
    return root


# case id, setup(tmp) -> MP16_ROOT, extra argv, exit code, drops the build records, regex on output + notes
CASES = [
    ("symlinked-subfolder", symlinked_subfolder, [], 0, {}, r"built 10 rows"),
    ("exact-id-before-fallback", exact_before_fallback, [], 0, {"missing_image": 1}, r"built 2 rows"),
    ("ambiguous-fallback", ambiguous_fallback, [], 2,
     {}, r"error: mp16: id 'aa_bb_cc\.jpg' has no exact image and its '_'/'/' spelling is ambiguous: \['aa/bb_cc\.jpg', 'aa_bb/cc\.jpg'\]"),
    ("two-releases-below-root", two_releases, [], 2, {},
     r"error: mp16: \S+ holds several releases \(MP16-Pro/, resources/\); set MP16_ROOT to one of them"),
    ("no-image-matches-an-id", no_matching_images, [], 2, {},
     r"error: mp16: no image under \S+ matches a metadata id \(found metadata: mp16_places365\.csv; folder: images/"),
    ("root-is-the-shard-folder", shard_folder_as_root, [], 2, {},
     r"error: mp16: \S+/images/mp16 is GeoEstimation's shard folder; set MP16_ROOT to the release root \S+/resources$"),
    ("empty-csv", _csv(b""), [], 2, {}, r"error: \S*mp16_places365\.csv: the file is empty"),
    ("header-only-csv", _csv(_H), [], 2, {}, r"error: \S*mp16_places365\.csv: header only, no rows"),
    ("ragged-line", _csv(_H + _R + b"a/b/c.jpg,x,1,2,0,0,0,0.1,0.1,0.1,EXTRA\n"), [], 2, {},
     r"error: \S*mp16_places365\.csv: line 3: 11 fields where the header has 10"),
    ("broken-quote", _csv(_H + _R + b'"a/b/c.jpg,x,1,2,0,0,0,0.1,0.1,0.1\n' + _R), [], 2, {},
     r"error: \S*mp16_places365\.csv: line 3: .*quote"),
    ("latin-1-bytes", _csv(_H + _R + b"a/b/c.jpg,Jos\xe9,1,2,0,0,0,0.1,0.1,0.1\n"), [], 2, {},
     r"error: \S*mp16_places365\.csv: line 3: bytes that are not UTF-8"),
    ("shard-garbage", _shards(lambda b: b[:_record_len()] + b"\xc1\xc1garbage\x00" + b[_record_len():]), [], 0,
     {"bad_shard_record": 1}, r"shard_1\.msg: unreadable bytes at byte offset \d+ \(10 bytes skipped\)"),
    ("shard-truncated", _shards(lambda b: b[:-20]), [], 0, {"bad_shard_record": 1, "missing_image": 1},
     r"shard_1\.msg: truncated or unreadable record at byte offset \d+"),
    ("gzip-tar", _tar(gzip.compress), [], 2, {}, r"error: \S*mp-16-images\.tar: a gzip-compressed archive, not a plain tar"),
    ("tar-gz", tar_gz, [], 2, {}, r"error: \S*mp16-000\.tar\.gz: a gzip-compressed archive, not a plain tar; .*gunzip -c mp16-000\.tar\.gz > mp16-000\.plain\.tar"),
    # 6 of 8 images are lost: more than the default max_drop_fraction, so the case raises it to see the counts
    ("truncated-tar", _tar(lambda b: b[:3000]), ["--set", "max_drop_fraction=0.9"], 0,
     {"bad_shard_record": 1, "missing_image": 6},
     r"mp-16-images\.tar: corrupt or truncated tar at byte offset 3072 after 2 members"),
    ("truncated-tar-default-limit", _tar(lambda b: b[:3000]), [], 2, None,
     r"lost 6 of 8 rows \(75%\) as 'missing_image', more than max_drop_fraction=0\.5: .*mp-16-images\.tar"),
]


@pytest.mark.parametrize("case, setup, argv, code, drops, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, setup, argv, code, drops, message, tmp_path, monkeypatch):
    root = setup(tmp_path)
    monkeypatch.setenv("MP16_ROOT", str(root))
    out = tmp_path / "ds"
    res = CliRunner().invoke(app, BUILD + ["--out", str(out)] + argv)
    assert res.exit_code == code, res.output
    text = " ".join(res.output.split())
    if code == 0:
        stats = json.loads((out / "build_stats.json").read_text())
        got = {k: v for k, v in stats["drops"].items() if k != "not_sampled"}
        assert got == drops
        text += " " + json.dumps(stats["notes"])
    else:
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert re.search(message, text), text



