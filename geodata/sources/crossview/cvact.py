"""CVACT (Liu & Li 2019): Canberra street views paired with polished satellite tiles.

On disk (``$CVACT_ROOT``: the release root or the folder above it; the structure is the one
Liumouliu/OriCNN ``input_data_ACT*.py`` and Skyy93/Sample4Geo ``sample4geo/dataset/cvact.py``
read with ``scipy.io.loadmat``)::

    ACT_data.mat                                  MATLAB file with
        panoIds            N panorama ids (char matrix or cell array)
        utm                N×2 UTM easting, northing (zone 55 south, EPSG:32755)
        trainSet.trainInd  1-based row indices of the training pairs        → split train
        valSet.valInd      1-based row indices of CVACT_val                 → split validation
        valSetAll.valInd   1-based row indices of CVACT_test (92,802 pairs) → split test
    ANU_data_small/streetview/<id>_grdView.jpg            train and validation images
    ANU_data_small/satview_polish/<id>_satView_polish.jpg
    ANU_data_test/streetview/<id>_grdView.jpg             test images
    ANU_data_test/satview_polish/<id>_satView_polish.jpg

By default the test split is read when the file has ``valSetAll`` and ``ANU_data_test/``
exists (otherwise noted as ``cvact.test``); asking for ``test`` without them is an error.

UTM is converted to WGS84 latitude/longitude with pyproj. A file whose first ``utm``
column holds northings (values above 1,000,000, as Canberra's ~6.09e6 m are, while
eastings stay below 1e6) is read with the columns swapped; this is noted on the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .common import drop_missing_images, finish, tiny_image
from .._layout import find_root, official_splits

__all__ = ["read_cvact", "write_sample", "utm_to_latlon"]

MAT = "ACT_data.mat"
GROUND = "{}/streetview/{}_grdView.jpg"
SAT = "{}/satview_polish/{}_satView_polish.jpg"
#: split → (struct, field, image folder)
SPLIT_KEYS = {
    "train": ("trainSet", "trainInd", "ANU_data_small"),
    "validation": ("valSet", "valInd", "ANU_data_small"),
    "test": ("valSetAll", "valInd", "ANU_data_test"),
}


def utm_to_latlon(easting: Any, northing: Any, epsg: int = 32755) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 (lat, lon) in degrees of UTM coordinates in metres (default zone 55 south).

    Examples
    --------
    >>> lat, lon = utm_to_latlon([692000.0], [6090000.0])
    >>> round(float(lat[0]), 3), round(float(lon[0]), 3)
    (-35.315, 149.112)
    """
    from pyproj import Transformer

    tr = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(easting, dtype=np.float64), np.asarray(northing, dtype=np.float64))
    return np.asarray(lat), np.asarray(lon)


def _load_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    if not path.exists():
        raise SourceError(f"{path}: file not found")
    try:
        return loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError …
        raise SourceError(f"{path}: unreadable .mat file ({str(exc).splitlines()[0] or type(exc).__name__})") from None


def _pano_ids(mat: dict[str, Any], path: Path) -> np.ndarray:
    if "panoIds" not in mat:
        raise SourceError(f"{path}: key 'panoIds' missing (keys: {sorted(k for k in mat if not k.startswith('__'))})")
    raw = mat["panoIds"]
    if raw.dtype.kind == "U":  # char matrix → one string per row
        ids = np.char.strip(raw.reshape(-1).astype(str))
    elif raw.dtype == object:  # cell array of char arrays
        ids = np.array([str(np.asarray(c).reshape(-1)[0]).strip() if np.asarray(c).size else ""
                        for c in raw.reshape(-1)])
    else:
        raise SourceError(f"{path}: 'panoIds' must hold strings, found dtype {raw.dtype}")
    return ids


def _split_indices(mat: dict[str, Any], path: Path, split: str, n: int) -> np.ndarray:
    struct_key, field, _ = SPLIT_KEYS[split]
    if struct_key not in mat:
        raise SourceError(f"{path}: key '{struct_key}' missing")
    st = mat[struct_key]
    names = st.dtype.names or ()
    if field not in names:
        raise SourceError(f"{path}: key '{struct_key}.{field}' missing (fields: {list(names)})")
    idx = np.asarray(st[field].reshape(-1)[0]).reshape(-1)
    if idx.size and (not np.all(np.isfinite(idx.astype(np.float64))) or np.any(idx < 1) or np.any(idx > n)):
        bad = idx[(idx < 1) | (idx > n)]
        raise SourceError(
            f"{path}: '{struct_key}.{field}' holds index {bad[0] if bad.size else '?'} outside 1..{n}"
        )
    return idx.astype(np.int64) - 1


def write_sample(d: Path) -> None:
    """Write a 26-pair CVACT copy: ``ACT_data.mat`` (train, val, test indices) and tiny images.

    14 train and 6 validation pairs under ``ANU_data_small/``, 6 test pairs under
    ``ANU_data_test/``; one panorama is missing.
    """
    from scipy.io import savemat

    d = Path(d)
    rng = np.random.default_rng(7)
    n = 26
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    ids = np.array(["".join(rng.choice(alphabet, 22)) for _ in range(n)])
    # Canberra: about 692 km E, 6,090 km N in zone 55 south; spread over ~3 km
    utm = np.stack([692000 + rng.uniform(0, 3000, n), 6090000 + rng.uniform(0, 3000, n)], axis=1)
    order = rng.permutation(n)
    parts = {"train": np.sort(order[:14]) + 1, "validation": np.sort(order[14:20]) + 1,
             "test": np.sort(order[20:]) + 1}
    d.mkdir(parents=True, exist_ok=True)
    mat: dict = {"panoIds": ids, "utm": utm}
    for split, (struct, field, _) in SPLIT_KEYS.items():
        idx = parts[split]
        # field order as the loaders index it: ``anuData['trainSet'][0][0][1]`` is the index list
        # integer indices: Sample4Geo indexes ``ids[anuData['trainSet'][0][0][1] - 1]`` with them
        mat[struct] = {field.replace("Ind", "Num"): idx.size, field: idx.reshape(-1, 1).astype(np.int32)}
    savemat(str(d / MAT), mat)
    for split, (_, _, folder) in SPLIT_KEYS.items():
        for i in parts[split] - 1:
            if i != 3:  # a hole, as in real copies
                tiny_image(d / GROUND.format(folder, ids[i]), (48, 12), 200 + int(i))
            tiny_image(d / SAT.format(folder, ids[i]), (16, 16), 300 + int(i))


@source("cvact", env="CVACT_ROOT", sample=write_sample)
def read_cvact(
    ctx: StepContext,
    *,
    root: Path,
    splits: list[str] | None = None,
    utm_epsg: int = 32755,
) -> StepOutput:
    """CVACT street-view / satellite pairs, located by the UTM coordinates of ``ACT_data.mat``.

    ``splits`` (default: ``train``, ``validation`` and, where present, ``test``) takes the
    release names too (``val``). An unreadable ``.mat``, a missing key or an index outside
    ``1..N`` raises, naming the file and key; missing image files are counted and skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geodata.context import StepContext
    >>> d = pathlib.Path(tempfile.mkdtemp()); write_sample(d)
    >>> df = read_cvact(StepContext(), root=d).rows
    >>> df.height, bool(df["lat"].is_between(-35.5, -35.1).all())
    (25, True)
    >>> sorted(df["split"].unique())
    ['test', 'train', 'validation']
    """
    out = StepOutput()
    root = find_root(root, lambda p: (p / MAT).is_file(), MAT)
    path = root / MAT
    mat = _load_mat(path)
    ids = _pano_ids(mat, path)
    if "utm" not in mat:
        raise SourceError(f"{path}: key 'utm' missing")
    utm = np.asarray(mat["utm"], dtype=np.float64)
    if utm.ndim != 2 or utm.shape[1] != 2 or utm.shape[0] != ids.size:
        raise SourceError(f"{path}: 'utm' must be {ids.size}×2, found shape {utm.shape}")
    east, north = utm[:, 0], utm[:, 1]
    if np.nanmedian(east) > 1e6 > np.nanmedian(north):
        east, north = north, east
        out.note("cvact.utm_columns", "northing, easting (swapped on read)")
    lat, lon = utm_to_latlon(east, north, utm_epsg)
    want = official_splits(splits)
    if want is None:
        want = ["train", "validation"]
        if "valSetAll" in mat and (root / "ANU_data_test").is_dir():
            want.append("test")
        else:
            out.note("cvact.test", "absent (needs valSetAll in ACT_data.mat and ANU_data_test/)")
    frames = []
    for split in want:
        if split == "test" and not (root / "ANU_data_test").is_dir():
            raise SourceError(f"{root / 'ANU_data_test'}: folder not found (the CVACT test images)")
        idx = _split_indices(mat, path, split, ids.size)
        frames.append(pl.DataFrame({
            "pano": ids[idx], "lat": lat[idx], "lon": lon[idx], "split": [split] * idx.size,
        }, schema={"pano": pl.String, "lat": pl.Float64, "lon": pl.Float64, "split": pl.String}))
    df = pl.concat(frames)
    root_s = str(root.resolve()) + "/"
    folder = pl.col("split").replace_strict({k: v[2] for k, v in SPLIT_KEYS.items()}, return_dtype=pl.String)
    df = df.with_columns(
        pl.when(pl.col("split") == "test").then(pl.lit("cvact/test/") + pl.col("pano"))
        .otherwise(pl.lit("cvact/") + pl.col("pano")).alias("id"),
        pl.lit("cvact").alias("source"),
        pl.lit("Canberra").alias("city"),
        pl.col("lat").alias("sat_lat"),
        pl.col("lon").alias("sat_lon"),
        pl.concat_str([pl.lit(root_s), folder, pl.lit("/streetview/"), pl.col("pano"), pl.lit("_grdView.jpg")]).alias("ground"),
        pl.concat_str([pl.lit(root_s), folder, pl.lit("/satview_polish/"), pl.col("pano"),
                       pl.lit("_satView_polish.jpg")]).alias("satellite"),
    )
    out.note("cvact.image_layout", ", ".join(sorted({SPLIT_KEYS[s][2] for s in want})))
    df = drop_missing_images(
        df, ctx, out, {"ground": "missing_ground_image", "satellite": "missing_satellite_image"}
    )
    return out.result(finish(df, "cvact", ctx, out))
