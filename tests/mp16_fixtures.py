"""Small MP-16 releases written from the public evidence (not by geodata's sample writer).

* GeoEstimation (TIBHannover/GeoEstimation README.md, download_images.py, config/baseM.yml,
  classification/dataset.py): ``resources/mp16_places365.csv``, ``resources/mp16_urls.csv``
  (``image_id,url``, no header), ``resources/images/mp16/shard_<N>.msg`` written by
  ``MsgPackWriter`` (a stream of ``msgpack.packb({"image": jpeg, "id": IMG_ID})``) plus
  ``writer.log``; ``images/yfcc25600/`` + ``yfcc25600_places365.csv`` for validation; the
  README also unpacks the test images to ``resources/images/im2gps/``.
* MP16-Pro (Applied-Machine-Learning-Lab/G3 utils/utils.py ``MP16Dataset``): CSVs with ``IMG_ID``
  (``/`` in MP16_Pro_places365.csv, ``_`` in MP16_Pro_filtered.csv), ``AUTHOR``, ``LAT``, ``LON``,
  Places365 columns and neighbourhood/city/county/state/region/country/continent;
  ``mp-16-images.tar`` with members ``./images/<hh>_<hh>_<id>.jpg`` (``member.name.split('/')[2]``)
  or its byte chunks ``mp-16-images00`` … (``cat mp-16-images* > mp-16-images.tar``) and
  ``tar_index.pkl``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import msgpack
import numpy as np

HEADER = "IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban"
PRO_PLACES = "neighbourhood,city,county,state,region,country,continent"

# (hex dir 1, hex dir 2, Flickr photo id, lat, lon): photos around real cities
PHOTOS = [
    ("34", "8d", 9055806529, 48.8584, 2.2945), ("0a", "1f", 4611882233, 51.5007, -0.1246),
    ("77", "c3", 2372918112, 40.6892, -74.0445), ("e1", "02", 8167219925, 35.6586, 139.7454),
    ("5b", "9a", 3378012345, -33.8568, 151.2153), ("c4", "4e", 6123450987, 41.8902, 12.4922),
    ("19", "b7", 1197744550, 52.5163, 13.3777), ("fa", "60", 7740012377, 37.8199, -122.4783),
    ("2d", "d2", 5512398760, 55.7539, 37.6208), ("83", "0c", 2982233441, -22.9519, -43.2105),
]


def jpeg(i: int, size: int = 16) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(1000 + i)
    arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def ids(sep: str = "/") -> list[str]:
    return [f"{a}{sep}{b}{sep}{p}.jpg" for a, b, p, _, _ in PHOTOS]


def _row(img_id: str, i: int, lat: float, lon: float) -> str:
    return f"{img_id},{10000000 + i}@N0{i % 9},{lat},{lon},{i % 3},{i % 16},{(i * 37) % 365},0.1,0.3,0.6"


def places_csv(path: Path, sep: str = "/", pro: bool = False, rows: list[int] | None = None) -> None:
    head = HEADER + ("," + PRO_PLACES if pro else "")
    lines = [head]
    for i in rows if rows is not None else range(len(PHOTOS)):
        a, b, p, lat, lon = PHOTOS[i]
        line = _row(f"{a}{sep}{b}{sep}{p}.jpg", i, lat, lon)
        if pro:
            line += f",Quartier {i},City {i},,State {i},,Country {i},Europe"
        lines.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def shard(path: Path, records: list[tuple[str, bytes]], raw_keys: bool = True) -> None:
    """One GeoEstimation shard; ``raw_keys`` packs keys and ids as bytes (read back raw)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for img_id, data in records:
            rec = {b"image": data, b"id": img_id.encode()} if raw_keys else {"image": data, "id": img_id}
            fh.write(msgpack.packb(rec))


def geoestimation(base: Path, missing: tuple[int, ...] = (9,)) -> Path:
    """``base/resources`` as the README's commands leave it; returns the resources folder."""
    res = base / "resources"
    places_csv(res / "mp16_places365.csv")
    (res / "mp16_urls.csv").write_text(
        "".join(f"{i},https://farm1.staticflickr.com/1/{i.rsplit('/', 1)[1][:-4]}_s.jpg\n" for i in ids())
    )
    recs = [(img_id, jpeg(i)) for i, img_id in enumerate(ids()) if i not in missing]
    shard(res / "images" / "mp16" / "shard_0.msg", recs[:5])
    shard(res / "images" / "mp16" / "shard_1.msg", recs[5:], raw_keys=False)
    (res / "images" / "mp16" / "writer.log").write_text("INFO - Sucesfully downloaded\n")
    (res / "yfcc25600_places365.csv").write_text(HEADER + "\n" + _row("v/1.jpg", 1, 10.0, 10.0) + "\n" + _row("v/2.jpg", 2, 20.0, 20.0) + "\n")
    shard(res / "images" / "yfcc25600" / "shard_0.msg", [("v/1.jpg", jpeg(101)), ("v/2.jpg", jpeg(102))])
    # the README unpacks the IM2GPS test images next to the shards
    (res / "images" / "im2gps").mkdir(parents=True)
    (res / "images" / "im2gps" / "1000269685_e60e9cdfb4_1125_78841376@N00.jpg").write_bytes(jpeg(500))
    return res


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def mp16pro(base: Path, chunked: bool = False, chunk: int = 3000) -> Path:
    """``base/MP16-Pro`` (the Hub repository's folder); returns it."""
    root = base / "MP16-Pro"
    places_csv(root / "metadata" / "MP16_Pro_places365.csv", "/", pro=True)
    places_csv(root / "metadata" / "MP16_Pro_filtered.csv", "_", pro=True, rows=list(range(8)))
    members = [(f"./images/{img_id}", jpeg(i)) for i, img_id in enumerate(ids("_"))]
    data = _tar_bytes(members)
    if chunked:
        for k, s in enumerate(range(0, len(data), chunk)):
            (root / f"mp-16-images{k:02d}").write_bytes(data[s : s + chunk])
    else:
        (root / "mp-16-images.tar").write_bytes(data)
    # a pickle that would create a folder if anyone unpickled it
    marker = base / "UNPICKLED"
    (root / "tar_index.pkl").write_bytes(b"cos\nmkdir\n(S'" + str(marker).encode() + b"'\ntR.")
    return root
