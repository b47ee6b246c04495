"""CVACT (Liu & Li 2019): Canberra street views paired with polished satellite tiles.

On disk (``$CVACT_ROOT``)::

    ACT_data.mat                                  MATLAB file with
        panoIds          N panorama ids (char matrix or cell array)
        utm              N×2 UTM easting, northing (zone 55 south, EPSG:32755)
        trainSet.trainInd  1-based row indices of the training pairs
        valSet.valInd      1-based row indices of the validation pairs
    ANU_data_small/streetview/<id>_grdView.jpg
    ANU_data_small/satview_polish/<id>_satView_polish.jpg

UTM is converted to WGS84 latitude/longitude with pyproj. A file whose first ``utm``
column holds northings (values above 1,000,000, as Canberra's ~6.09e6 m are, while
eastings stay below 1e6) is read with the columns swapped; this is noted on the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from ..context import Context
from ..errors import SourceError
from ..registry import source
from ._crossview import drop_missing_images, finish, tiny_image

__all__ = ["read_cvact", "write_sample", "utm_to_latlon"]

MAT = "ACT_data.mat"
GROUND = "ANU_data_small/streetview/{}_grdView.jpg"
SAT = "ANU_data_small/satview_polish/{}_satView_polish.jpg"
SPLIT_KEYS = {"train": ("trainSet", "trainInd"), "val": ("valSet", "valInd")}


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
    struct_key, field = SPLIT_KEYS[split]
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
    """Write a 20-pair CVACT copy: ``ACT_data.mat`` and tiny images (one panorama missing)."""
    from scipy.io import savemat

    d = Path(d)
    rng = np.random.default_rng(7)
    n = 20
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    ids = np.array(["".join(rng.choice(alphabet, 22)) for _ in range(n)])
    # Canberra: about 692 km E, 6,090 km N in zone 55 south; spread over ~3 km
    utm = np.stack([692000 + rng.uniform(0, 3000, n), 6090000 + rng.uniform(0, 3000, n)], axis=1)
    order = rng.permutation(n)
    train = np.sort(order[:14]) + 1
    val = np.sort(order[14:]) + 1
    d.mkdir(parents=True, exist_ok=True)
    savemat(
        str(d / MAT),
        {
            "panoIds": ids,
            "utm": utm,
            "trainSet": {"trainInd": train.reshape(-1, 1).astype(np.float64), "trainNum": float(train.size)},
            "valSet": {"valInd": val.reshape(-1, 1).astype(np.float64), "valNum": float(val.size)},
        },
    )
    for i, pid in enumerate(ids):
        if i != 3:  # a hole, as in real copies
            tiny_image(d / GROUND.format(pid), (48, 12), 200 + i)
        tiny_image(d / SAT.format(pid), (16, 16), 300 + i)


@source("cvact", env="CVACT_ROOT", sample=write_sample)
def read_cvact(
    ctx: Context,
    *,
    root: Path,
    splits: list[Literal["train", "val"]] = ["train", "val"],  # noqa: B006
    utm_epsg: int = 32755,
) -> pl.DataFrame:
    """CVACT street-view / satellite pairs, located by the UTM coordinates of ``ACT_data.mat``.

    An unreadable ``.mat``, a missing key or an index outside ``1..N`` raises, naming the
    file and key; missing image files are counted and skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geodata.context import Context
    >>> d = pathlib.Path(tempfile.mkdtemp()); write_sample(d)
    >>> df = read_cvact(Context(), root=d)
    >>> df.height, bool(df["lat"].is_between(-35.5, -35.1).all())
    (19, True)
    """
    root = Path(root)
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
        ctx.note("cvact.utm_columns", "northing, easting (swapped on read)")
    lat, lon = utm_to_latlon(east, north, utm_epsg)
    frames = []
    for split in splits:
        idx = _split_indices(mat, path, split, ids.size)
        frames.append(pl.DataFrame({
            "pano": ids[idx], "lat": lat[idx], "lon": lon[idx], "split": [split] * idx.size,
        }, schema={"pano": pl.String, "lat": pl.Float64, "lon": pl.Float64, "split": pl.String}))
    df = pl.concat(frames)
    root_s = str(root.resolve()) + "/"
    g_pre, g_suf = GROUND.split("{}")
    s_pre, s_suf = SAT.split("{}")
    df = df.with_columns(
        (pl.lit("cvact/") + pl.col("pano")).alias("id"),
        pl.lit("cvact").alias("source"),
        pl.lit("Canberra").alias("city"),
        pl.col("lat").alias("sat_lat"),
        pl.col("lon").alias("sat_lon"),
        (pl.lit(root_s + g_pre) + pl.col("pano") + pl.lit(g_suf)).alias("ground"),
        (pl.lit(root_s + s_pre) + pl.col("pano") + pl.lit(s_suf)).alias("satellite"),
    )
    df = drop_missing_images(
        df, ctx, {"ground": "missing_ground_image", "satellite": "missing_satellite_image"}
    )
    return finish(df, "cvact", ctx)
