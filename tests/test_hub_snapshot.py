"""The hub_snapshot source reads downloaded Hub dataset repositories in place, through ``datasets``.

Each fixture is a snapshot-shaped folder written here from the evidence in
``catalogs/hub_snapshot.yaml`` (the releases' own loaders and cards): save_to_disk Arrow folders
(EarthDial), JSONL (GeoChat-Bench), JSON + image folders (TEOChatlas), Parquet shards with embedded
images (RSCC), and the two releases handed to their own readers (GeoChat-Instruct, MP16-Pro).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.cli import app
from geodata.context import StepContext
from geodata.errors import SourceError
from geodata.images import read_ref
from geodata.registry import SOURCES, _load_all
from geodata.sources.eo.hub_snapshot import discover, releases
from geodata.dataset.writer import embed_images

datasets = pytest.importorskip("datasets")
_load_all()


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8), "RGB").save(buf, format="JPEG")
    return buf.getvalue()


def _png_file(path: Path, seed: int) -> bytes:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8), "RGB").save(path, format="PNG")
    return path.read_bytes()


def _read(root: Path, **params):
    return SOURCES["hub_snapshot"].fn(StepContext(), root=root, **params)


def _img(b: bytes | None) -> dict | None:
    return None if b is None else {"bytes": b, "path": None}


# -- EarthDial: save_to_disk evaluation sets -----------------------------------------------------------
def _earthdial(root: Path) -> dict[str, bytes]:
    """Folders as hiyamdebary/EarthDial's eval scripts load_from_disk them (columns from their __getitem__)."""
    I, S = datasets.Image(), datasets.Value("string")
    blobs = {k: _jpeg(i) for i, k in enumerate(["aid0", "aid1", "cap", "det", "a", "b", "c", "d", "pre", "post"])}

    def save(rel: str, cols: dict, feats: dict, shards: int = 1) -> None:
        datasets.Dataset.from_dict(cols, features=datasets.Features(feats)).save_to_disk(str(root / rel), num_shards=shards)

    save("Classification/AID", {"jpg": [_img(blobs["aid0"]), _img(blobs["aid1"])],
                                 "question": ["[cls] <image> Classify the image. Classes: Airport, Beach.", "<image> Classify."],
                                 "groundtruth": ["Airport", "Beach"]}, {"jpg": I, "question": S, "groundtruth": S}, shards=2)
    save("Image_captioning/RSITMD_Captions/RSITMD_Captions_test",
         {"jpg": [_img(blobs["cap"])], "question": ["<image> Describe the image."],
          **{f"groundtruth{k}": [f"A port with ships {k}." if k != 3 else ""] for k in range(5)}},
         {"jpg": I, "question": S, **{f"groundtruth{k}": S for k in range(5)}})
    save("Detection/NWPU_VHR_10/NWPU_VHR_10_test_refer",
         {"jpg": [_img(blobs["det"])], "question": [" [refer] [hr_rgb_0.5] <image> \\n plane"],
          "groundtruth": ["[[10, 20, 30, 40, 0]]"], "ttype": ["refer"], "size_group": ["small"]},
         {"jpg": I, "question": S, "groundtruth": S, "ttype": S, "size_group": S})
    save("Region_captioning/NWPU_VHR_10/NWPU_VHR_10_test_region_captioning",
         {"jpg": [_img(blobs["det"])], "question": [" [identify] [hr_rgb_0.5] <image> \\n what object is in this location {<1><2><3><4>|<0>}"],
          "groundtruth": ["airplane"], "ttype": ["identify"], "size_group": ["small"]},
         {"jpg": I, "question": S, "groundtruth": S, "ttype": S, "size_group": S})
    save("GeoChat_Bench/identify", {"jpg": [_img(blobs["det"])], "question": ["[identify] <image> what is at {<1><2><3><4>|<0>}"],
                                    "groundtruth": ["a ship"], "ttype": ["identify"], "size_group": ["large"]},
         {"jpg": I, "question": S, "groundtruth": S, "ttype": S, "size_group": S})
    save("Temporal/FMoW_RGB_Valid", {**{f"jpg_{x}": [_img(blobs[x.lower()])] for x in "ABCD"},
                                     "question": ["<image> <image> <image> <image> What is this site?"],
                                     "groundtruth": ["airport"]}, {**{f"jpg_{x}": I for x in "ABCD"}, "question": S, "groundtruth": S})
    save("Temporal/Disaster_Shards/xBD/test/xBD_testset_1",
         {"jpg_A": [_img(blobs["pre"]), None], "jpg_B": [_img(blobs["post"]), _img(blobs["post"])],
          "question": ["[changedet] <image> <image> Identify the disaster.", "?"], "groundtruth": ["flood", "wind"]},
         {"jpg_A": I, "jpg_B": I, "question": S, "groundtruth": S})
    return blobs


def test_earthdial_arrow_folders(tmp_path: Path) -> None:
    blobs = _earthdial(tmp_path)
    res = _read(tmp_path)
    df = res.rows.sort("key")
    assert set(df["dataset"]) == {"earthdial"}
    by_cfg = {c: g for (c,), g in df.group_by("config")}
    assert by_cfg["Classification/AID"]["answer"].sort().to_list() == ["Airport", "Beach"]
    assert set(by_cfg["Classification/AID"]["task"]) == {"scene_cls"}
    assert len(list((tmp_path / "Classification/AID").glob("data-*.arrow"))) == 2  # two shards: rows map across them
    for row in by_cfg["Classification/AID"].iter_rows(named=True):
        assert read_ref(row["images"][0]) == blobs["aid0" if row["answer"] == "Airport" else "aid1"]
    cap = by_cfg["Image_captioning/RSITMD_Captions/RSITMD_Captions_test"].row(0, named=True)
    assert cap["answers"] == ["A port with ships 0.", "A port with ships 1.", "A port with ships 2.", "A port with ships 4."]
    assert cap["task"] == "image_caption" and cap["split"] == "test" and cap["question"] == "Describe the image."
    det = by_cfg["Detection/NWPU_VHR_10/NWPU_VHR_10_test_refer"].row(0, named=True)
    assert det["task"] == "referring" and json.loads(det["meta"]) == {"size_group": "small", "ttype": "refer"}
    assert by_cfg["Region_captioning/NWPU_VHR_10/NWPU_VHR_10_test_region_captioning"]["task"].to_list() == ["region_caption"]
    assert by_cfg["GeoChat_Bench/identify"]["task"].to_list() == ["region_caption"]
    fmow = by_cfg["Temporal/FMoW_RGB_Valid"].row(0, named=True)
    assert [read_ref(r) for r in fmow["images"]] == [blobs[x] for x in "abcd"] and fmow["task"] == "change"
    xbd = by_cfg["Temporal/Disaster_Shards/xBD/test/xBD_testset_1"]
    assert xbd.height == 1 and [read_ref(r) for r in xbd["images"][0]] == [blobs["pre"], blobs["post"]]
    assert res.drops == {"hub_snapshot: missing image": 1}
    # the writer embeds the references like any other image reference
    items, why = embed_images([fmow["images"]], True)
    assert why == [None] and [i["bytes"] for i in items[0]] == [blobs[x] for x in "abcd"]
    only = _read(tmp_path, configs=["Classification/AID"])
    assert only.rows.height == 2


# -- GeoChat-Bench: JSONL question files + an image folder ----------------------------------------------
def test_geochat_bench_jsonl(tmp_path: Path) -> None:
    """MBZUAI/GeoChat-Bench's question files as mbzuai-oryx/GeoChat geochat/eval/batch_geochat_{referring,
    scene,vqa}.py read them; the images come from each set's own release (image_dir: several folders)."""
    png = _png_file(tmp_path / "GeoChat_Bench_images" / "P0019_0004.png", 1)
    aid = _png_file(tmp_path / "AID" / "Airport" / "airport_1.jpg", 2)
    hr = _png_file(tmp_path / "HRBEN" / "Data" / "10.tif", 3)
    recs = [{"question_id": 1, "image_id": "P0019_0004", "question": "the large vehicle at the top",
             "ground_truth": [[[1, 2], [9, 2], [9, 8], [1, 8]]], "type": "ref", "dataset": "SOTA", "obj_ids": [3],
             "size_group": "small"},
            {"question_id": 2, "image_id": "P9999_0000", "question": "a ship", "ground_truth": [[[0, 0], [1, 0], [1, 1], [0, 1]]],
             "type": "ref", "dataset": "FAST", "obj_ids": [1], "size_group": "large"}]
    (tmp_path / "referring.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "aid.jsonl").write_text(json.dumps({"question_id": 7, "image": "Airport/airport_1.jpg",
                                                    "text": "Classify the image within one of the given classes: Airport, Beach.",
                                                    "ground_truth": "Airport"}) + "\n")
    (tmp_path / "hrben.jsonl").write_text(json.dumps({"question_id": 3, "image": "10.tif", "text": "Is there a road?",
                                                      "category": "presence", "type": "presence"}) + "\n")
    (tmp_path / "README.md").write_text("# GeoChat-Bench\n")  # a card without configs: the file layout decides
    res = _read(tmp_path, release="geochat_bench", image_dir=["GeoChat_Bench_images", "AID", "HRBEN/Data"])
    by = {r["config"]: r for r in res.rows.iter_rows(named=True)}
    assert set(by) == {"referring", "aid", "hrben"} and set(res.rows["split"]) == {"test"}
    ref = by["referring"]
    assert ref["task"] == "referring" and read_ref(ref["images"][0]) == png and ref["question"] == "the large vehicle at the top"
    assert json.loads(ref["meta"])["dataset"] == "SOTA" and ref["answer"] == str([[[1, 2], [9, 2], [9, 8], [1, 8]]])
    assert by["aid"]["task"] == "scene_cls" and by["aid"]["answer"] == "Airport" and read_ref(by["aid"]["images"][0]) == aid
    assert by["hrben"]["task"] == "vqa" and by["hrben"]["answers"] == [] and read_ref(by["hrben"]["images"][0]) == hr
    assert res.drops == {"hub_snapshot: missing image": 1}


# -- TEOChatlas: train/ and eval/ JSON conversations over image sequences ---------------------------------
def test_teochatlas_json_sequences(tmp_path: Path) -> None:
    """LLaVA-style records with a ``video`` list of image paths (TEOChatlas train/instruct.json, eval/<set>.json)."""
    imgs = [_png_file(tmp_path / "images" / "fMoW" / f"airport_0_{k}_rgb.png", k) for k in range(3)]
    _png_file(tmp_path / "images" / "xBD" / "pre.png", 7), _png_file(tmp_path / "images" / "xBD" / "post.png", 8)
    train = [{"id": "fmow-1", "task": "classification", "video": [f"fMoW/airport_0_{k}_rgb.png" for k in range(3)],
              "conversations": [{"from": "human", "value": "<video>\nWhat is in this sequence of images?"},
                                {"from": "gpt", "value": "airport"},
                                {"from": "gpt", "value": "out of order"}, {"from": "human", "value": "?"}]}]
    ev = [{"id": "xbd-1", "task": "dmg_cls", "video": ["xBD/pre.png", "xBD/post.png"],
           "conversations": [{"from": "human", "value": "<video> Classify the damage of the building."},
                             {"from": "gpt", "value": "destroyed"}]},
          {"id": "xbd-2", "task": "dmg_cls", "video": ["xBD/pre.png", "xBD/gone.png"],
           "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "instruct.json").write_text(json.dumps(train))
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "xBD_SRE_QA_RQA.json").write_text(json.dumps(ev))
    (tmp_path / "TEOChatlas.py").write_text("# the repository's loading script: never run\nraise SystemExit\n")
    res = _read(tmp_path, release="teochatlas", image_dir="images")
    df = res.rows.sort("key")
    assert df["config"].to_list() == ["instruct", "xBD_SRE_QA_RQA"]
    assert df["split"].to_list() == ["train", "test"]
    fm = df.row(0, named=True)
    assert [read_ref(r) for r in fm["images"]] == imgs and fm["answer"] == "airport"
    assert fm["question"] == "What is in this sequence of images?" and fm["task"] == "classification"
    assert df.row(1, named=True)["answer"] == "destroyed"
    assert res.drops == {"hub_snapshot: bad turn": 1, "hub_snapshot: missing image": 1}


# -- RSCC: Parquet shards with embedded pre / post images ------------------------------------------------
def _rscc(root: Path) -> dict[str, bytes]:
    I, S = datasets.Image(), datasets.Value("string")
    b = {"pre": _jpeg(20), "post": _jpeg(21)}
    feats = datasets.Features({"pre_image": I, "post_image": I, "change_caption": S, "event": S})
    (root / "data").mkdir(parents=True)
    for split in ("train", "test"):
        datasets.Dataset.from_dict({"pre_image": [_img(b["pre"])], "post_image": [_img(b["post"])],
                                    "change_caption": [f"Buildings along the coast were destroyed ({split})."],
                                    "event": ["hurricane-michael"]}, features=feats
                                   ).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return b


def test_rscc_jsonl_with_paths(tmp_path: Path) -> None:
    """Caption records as Bili-Sakura/RSCC's scripts write them (pre_image / post_image paths of the
    authors' machine, change_caption), images under xbd_subset/<event>/images/."""
    stem = "hurricane-michael_00000105"
    pre = _png_file(tmp_path / "xbd_subset" / "hurricane-michael" / "images" / f"{stem}_pre_disaster_part1.png", 1)
    post = _png_file(tmp_path / "xbd_subset" / "hurricane-michael" / "images" / f"{stem}_post_disaster_part1.png", 2)
    far = "/home/datasets/xbd_subset/hurricane-michael/images/"
    recs = [{"model_id": "qvq-max", "inference_type": "zero-shot", "pre_image": far + f"{stem}_pre_disaster_part1.png",
             "post_image": far + f"{stem}_post_disaster_part1.png", "change_caption": "Several roofs were torn off."},
            {"model_id": "qvq-max", "inference_type": "zero-shot", "pre_image": far + "gone_pre_disaster_part2.png",
             "post_image": far + "gone_post_disaster_part2.png", "change_caption": "x"}]
    (tmp_path / "xbd_subset_qvq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = _read(tmp_path, release="rscc")
    row = res.rows.row(0, named=True)
    assert res.rows.height == 1 and [read_ref(r) for r in row["images"]] == [pre, post]
    assert row["answers"] == ["Several roofs were torn off."] and row["task"] == "change_caption" and row["split"] == "train"
    assert json.loads(row["meta"]) == {"inference_type": "zero-shot", "model_id": "qvq-max"}
    assert res.drops == {"hub_snapshot: missing image": 1}


def test_rscc_parquet(tmp_path: Path) -> None:
    b = _rscc(tmp_path)
    res = _read(tmp_path, release="rscc")
    df = res.rows.sort("split")
    assert df["split"].to_list() == ["test", "train"] and set(df["task"]) == {"change_caption"}
    row = df.row(1, named=True)
    assert [read_ref(r) for r in row["images"]] == [b["pre"], b["post"]]
    assert row["answers"] == ["Buildings along the coast were destroyed (train)."] and row["question"] == ""
    assert _read(tmp_path, release="rscc", splits=["train"]).rows.height == 1


# -- the two releases with their own readers -------------------------------------------------------------
def _split(blob: bytes, folder: Path, stem: str, size: int) -> list[Path]:
    """``split -b SIZE blob STEM`` (chunks STEMaa, STEMab, ...)."""
    out = []
    for i in range(0, len(blob), size):
        k = i // size
        p = folder / f"{stem}{chr(97 + k // 26)}{chr(97 + k % 26)}"
        p.write_bytes(blob[i:i + size])
        out.append(p)
    return out


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_geochat_instruct_snapshot_reads_split_archive_in_place(tmp_path: Path, kind: str) -> None:
    """MBZUAI/GeoChat_Instruct as downloaded: GeoChat_Instruct.json + images_partaa, images_partab, ...
    (the images archive split into byte chunks), read in place by the geochat_instruct source."""
    import tarfile
    import zipfile

    inner = "share/softwares/kartik/GeoChat_finetuning/final_images_llava/"
    blobs = {f"P000{i}_0001.png": _png_file(tmp_path / "src" / f"{i}.png", 40 + i) for i in range(3)}
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w") as zf:
            for j, (name, b) in enumerate(blobs.items()):
                zf.writestr(inner + name, b, compress_type=zipfile.ZIP_DEFLATED if j != 1 else zipfile.ZIP_STORED)
    else:
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, b in blobs.items():
                ti = tarfile.TarInfo(inner + name)
                ti.size = len(b)
                tf.addfile(ti, io.BytesIO(b))
    snap = tmp_path / "GeoChat_Instruct"
    snap.mkdir()
    parts = _split(buf.getvalue(), snap, "images_part", 700)  # members straddle chunk boundaries
    assert len(parts) >= 3
    recs = [{"id": n[:-4], "image": n, "conversations": [{"from": "human", "value": "<image>\n[vqa] Is there a ship?"},
                                                         {"from": "gpt", "value": "Yes"}]} for n in blobs]
    recs.append({"id": "gone", "image": "P9999_0000.png", "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]})
    (snap / "GeoChat_Instruct.json").write_text(json.dumps(recs))
    res = _read(snap)
    assert res.rows["dataset"].unique().to_list() == ["geochat_instruct"] and res.rows.height == 3
    assert f"images_partaa..{parts[-1].name} ({kind}, read in place)" in res.notes["geochat_instruct.image_layout"]
    assert res.drops == {"geochat: missing image": 1}
    for row in res.rows.iter_rows(named=True):
        assert read_ref(row["image"]) == blobs[row["key"].rsplit("-", 1)[0] + ".png"]
    from geodata.sources.eo.common import image_size

    assert image_size(res.rows["image"][0]) == (12, 12)


def test_mp16_pro_snapshot_delegates(tmp_path: Path) -> None:
    """Jia-py/MP16-Pro as downloaded: metadata/*.csv + the image tar in byte chunks mp-16-images00, 01, ..."""
    from mp16_fixtures import mp16pro

    root = mp16pro(tmp_path, chunked=True)
    assert (root / "mp-16-images00").is_file() and not (root / "mp-16-images.tar").exists()
    res = _read(root, release="mp16_pro")
    direct = SOURCES["mp16"].fn(StepContext(), root=root)
    direct = direct.rows if hasattr(direct, "rows") else direct
    assert res.rows.height == direct.height > 0 and res.rows.columns == direct.columns


# -- layouts, mapping, errors, check ----------------------------------------------------------------------
def _parquet(path: Path, n: int = 1, col: str = "image", seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict({col: [_img(_jpeg(seed + i)) for i in range(n)], "text": [f"t{seed + i}" for i in range(n)]},
                               features=datasets.Features({col: datasets.Image(), "text": datasets.Value("string")})
                               ).to_parquet(str(path))


def test_discover_layouts(tmp_path: Path) -> None:
    a = tmp_path / "a"
    _parquet(a / "data" / "Classification" / "train-00000-of-00002.parquet")
    _parquet(a / "data" / "Classification" / "train-00001-of-00002.parquet")
    _parquet(a / "data" / "Classification" / "validation-00000-of-00001.parquet")
    _parquet(a / "Detection" / "test" / "0000.parquet")
    _parquet(a / ".cache" / "huggingface" / "x.parquet")  # snapshot_download's own cache: skipped
    parts = {(p.config, p.split): len(p.paths) for p in discover(a)}
    assert parts == {("Classification", "train"): 2, ("Classification", "validation"): 1, ("Detection", "test"): 1}
    b = tmp_path / "b"
    _parquet(b / "shards" / "one-a.parquet", 2, seed=10)
    _parquet(b / "shards" / "one-b.parquet", 2, seed=20)
    _parquet(b / "shards" / "two.parquet", 1, seed=30)
    (b / "README.md").write_text("---\nconfigs:\n- config_name: scenes\n  data_files:\n  - split: test\n    path: shards/one*\n"
                                 "  - split: train\n    path: shards/two.parquet\n---\n# card\n")
    res = _read(b, mapping={"images": ["image"], "answer": "text"})
    assert sorted(zip(res.rows["config"], res.rows["split"])) == [("scenes", "test")] * 4 + [("scenes", "train")]
    # every row's reference reads its own image, across shards and splits
    for row in res.rows.iter_rows(named=True):
        assert read_ref(row["images"][0]) == _jpeg(int(row["answer"][1:]))
    (b / "README.md").write_text("---\nconfigs:\n- config_name: few\n  data_files:\n  - split: train_10shot\n    path: shards/two.parquet\n"
                                 "  - split: holdout\n    path: shards/one-a.parquet\n---\n")
    with pytest.raises(SourceError, match="split 'holdout' is none of train / validation / test"):
        _read(b, mapping={"images": ["image"], "answer": "text"})
    few = _read(b, mapping={"images": ["image"], "answer": "text"}, splits=["train"])  # holdout: not asked for
    assert few.rows["split"].to_list() == ["train"] and few.rows["answer"].to_list() == ["t30"]
    (b / "README.md").write_text("---\nconfigs:\n- config_name: x\n  data_files:\n  - split: test\n    path: nope/*\n---\n")
    with pytest.raises(SourceError, match=r"config 'x' split 'test': no file matches \['nope/\*'\]"):
        _read(b)


def test_loose_arrow_files(tmp_path: Path) -> None:
    """dataset_info.json + <name>-<split>.arrow at the repository root (a builder's Arrow files pushed as they are)."""
    feats = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    for k, split in enumerate(("train", "test")):
        ds = datasets.Dataset.from_dict({"image": [_img(_jpeg(50 + k))], "text": [split]}, features=feats)
        ds.save_to_disk(str(tmp_path / "tmp" / split))
        (tmp_path / f"imagefolder-{split}.arrow").write_bytes(next((tmp_path / "tmp" / split).glob("*.arrow")).read_bytes())
    import shutil

    shutil.rmtree(tmp_path / "tmp")
    parts = {(p.config, p.split, p.kind) for p in discover(tmp_path)}
    assert parts == {("default", "train", "arrow"), ("default", "test", "arrow")}
    res = _read(tmp_path, mapping={"images": ["image"], "answer": "text"})
    got = {r["answer"]: read_ref(r["images"][0]) for r in res.rows.iter_rows(named=True)}
    assert got == {"train": _jpeg(50), "test": _jpeg(51)}


def test_imagefolder_metadata_paths(tmp_path: Path) -> None:
    """An imagefolder repository: <split>/metadata.jsonl naming its images (file_name) relative to itself."""
    png = _png_file(tmp_path / "test" / "imgs" / "a.png", 5)
    (tmp_path / "test" / "metadata.jsonl").write_text(json.dumps({"file_name": "imgs/a.png", "text": "a port"}) + "\n")
    res = _read(tmp_path, mapping={"images": ["file_name"], "answer": "text"})
    assert res.rows["config"].to_list() == ["metadata"] and res.rows["split"].to_list() == ["test"]
    assert read_ref(res.rows["images"][0][0]) == png


def test_dataset_dict_folder_splits(tmp_path: Path) -> None:
    """A DatasetDict.save_to_disk folder: dataset_dict.json + one save_to_disk folder per split."""
    feats = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    mk = lambda s: datasets.Dataset.from_dict({"image": [_img(_jpeg(s))], "text": [f"t{s}"]}, features=feats)  # noqa: E731
    datasets.DatasetDict({"train": mk(1), "validation": mk(2), "test": mk(3)}).save_to_disk(str(tmp_path / "scenes"))
    parts = {(p.config, p.split) for p in discover(tmp_path)}
    assert parts == {("scenes", "train"), ("scenes", "validation"), ("scenes", "test")}
    res = _read(tmp_path, mapping={"images": ["image"], "answer": "text"}, splits=["val"])
    assert res.rows["answer"].to_list() == ["t2"] and read_ref(res.rows["images"][0][0]) == _jpeg(2)


def test_unknown_layout_lists_columns_and_keys(tmp_path: Path) -> None:
    _parquet(tmp_path / "data" / "train-00000-of-00001.parquet", col="picture")
    with pytest.raises(SourceError) as exc:
        _read(tmp_path)
    msg = str(exc.value)
    assert "unknown column layout ['picture', 'text']" in msg and "images or image_template" in msg and "answers" in msg
    with pytest.raises(SourceError, match=r"mapping names columns \['img'\]"):
        _read(tmp_path, mapping={"images": ["img"], "answer": "text"})
    with pytest.raises(SourceError, match="mapping keys \\['caption'\\] unknown"):
        _read(tmp_path, mapping={"images": ["picture"], "caption": "text"})
    with pytest.raises(SourceError, match="no Parquet, JSON or save_to_disk Arrow shard"):
        _read(_empty(tmp_path))
    lost = tmp_path / "lost"
    lost.mkdir()
    (lost / "referring.jsonl").write_text(json.dumps({"question_id": 1, "image_id": "nope", "question": "q",
                                                      "ground_truth": "a"}) + "\n")
    with pytest.raises(SourceError, match=r"no row kept of referring/test .*hub_snapshot: missing image"):
        _read(lost, release="geochat_bench")
    with pytest.raises(SourceError, match="unknown release 'nosuch'"):
        _read(tmp_path, release="nosuch")


def _empty(tmp: Path) -> Path:
    (tmp / "empty" / "sub").mkdir(parents=True)
    return tmp / "empty"


def test_declared_releases_are_complete() -> None:
    rel = releases()
    assert set(rel) == {"earthdial", "geochat_bench", "teochatlas", "rscc", "geochat_instruct", "mp16_pro"}
    for name, r in rel.items():
        assert r.get("repo") and (r.get("delegate") in SOURCES if r.get("delegate") else r.get("variants")), name
    cat = (Path(__file__).resolve().parent.parent / "catalogs" / "hub_snapshot.yaml").read_text()
    for name, r in rel.items():
        assert r["repo"] in cat, name


def test_check_command_on_a_snapshot(tmp_path: Path) -> None:
    _rscc(tmp_path)
    out = CliRunner().invoke(app, ["check", "hub_snapshot", "--root", str(tmp_path), "--param", "release=rscc", "--json"])
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert rep["rows_after_drops"] == 2 and rep["images"]["rows_missing_images"] == 0


def test_sample_snapshot(tmp_path: Path) -> None:
    SOURCES["hub_snapshot"].sample(tmp_path)
    res = _read(tmp_path)
    assert res.rows.height == 3 and res.drops == {"hub_snapshot: missing image": 1}
    assert isinstance(res.rows, pl.DataFrame)
