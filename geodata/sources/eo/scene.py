"""Scene classification sources: UC Merced, AID, NWPU-RESISC45, EuroSAT (RGB).

All four are one folder per class; the class comes from the folder name and is normalized
with ``geodata/data/eo_classes.csv`` (see :mod:`geodata.sources.eo.common`). A folder whose
name is not in the table is an error naming the folder.

Output (one row per image): ``eo_family='scene'``, ``dataset``, ``split`` (``train``: none of
the four ships an official split), ``key`` (path under the root), ``image`` (absolute path),
``raw_label``, ``label`` (canonical class).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .common import canonical_class, sample_image

__all__ = ["UCM_CLASSES", "AID_CLASSES", "NWPU_CLASSES", "EUROSAT_CLASSES", "read_scene_folders"]

UCM_CLASSES = (
    "agricultural airplane baseballdiamond beach buildings chaparral denseresidential forest "
    "freeway golfcourse harbor intersection mediumresidential mobilehomepark overpass parkinglot "
    "river runway sparseresidential storagetanks tenniscourt"
).split()
AID_CLASSES = (
    "Airport BareLand BaseballField Beach Bridge Center Church Commercial DenseResidential Desert "
    "Farmland Forest Industrial Meadow MediumResidential Mountain Park Parking Playground Pond "
    "Port RailwayStation Resort River School SparseResidential Square Stadium StorageTanks Viaduct"
).split()
NWPU_CLASSES = (
    "airplane airport baseball_diamond basketball_court beach bridge chaparral church "
    "circular_farmland cloud commercial_area dense_residential desert forest freeway golf_course "
    "ground_track_field harbor industrial_area intersection island lake meadow medium_residential "
    "mobile_home_park mountain overpass palace parking_lot railway railway_station "
    "rectangular_farmland river roundabout runway sea_ice ship snowberg sparse_residential "
    "stadium storage_tank tennis_court terrace thermal_power_station wetland"
).split()
EUROSAT_CLASSES = (
    "AnnualCrop Forest HerbaceousVegetation Highway Industrial Pasture PermanentCrop Residential "
    "River SeaLake"
).split()

SCENE_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "image": pl.String,
    "raw_label": pl.String,
    "label": pl.String,
}


def read_scene_folders(root: Path, dataset: str, pattern: str) -> pl.DataFrame:
    """Index ``root/<pattern>`` where the image's parent folder names its class.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> write_ucm_sample(d)
    >>> df = read_scene_folders(d, "ucm", "Images/*/*.tif")
    >>> sorted(set(df["label"]))[:2]
    ['airplane', 'baseball field']
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: {dataset} root is not a directory")
    files = sorted(p for p in root.glob(pattern) if p.is_file())
    if not files:
        raise SourceError(f"{root}: no {dataset} images match '{pattern}'")
    labels: dict[str, str] = {}
    for folder in sorted({p.parent.name for p in files}):
        canon = canonical_class(folder, strict=True, where=f"{root}/{folder}")
        labels[folder] = canon  # type: ignore[assignment]
    return pl.DataFrame(
        {
            "eo_family": ["scene"] * len(files),
            "dataset": [dataset] * len(files),
            "split": ["train"] * len(files),
            "key": [p.relative_to(root).as_posix() for p in files],
            "image": [str(p.resolve()) for p in files],
            "raw_label": [p.parent.name for p in files],
            "label": [labels[p.parent.name] for p in files],
        },
        schema=SCENE_SCHEMA,
    )


_SAMPLE_N = 2


def write_ucm_sample(d: Path) -> None:
    """UCMerced_LandUse layout: ``Images/<class>/<class>NN.tif`` (256×256 in the real set)."""
    for ci, c in enumerate(("airplane", "baseballdiamond", "storagetanks")):
        for i in range(_SAMPLE_N):
            sample_image(Path(d) / "Images" / c / f"{c}{i:02d}.tif", (32, 32), 100 + 10 * ci + i, "TIFF")


def write_aid_sample(d: Path) -> None:
    """AID layout: ``<Class>/<class>_N.jpg`` (600×600 in the real set)."""
    for ci, c in enumerate(("Airport", "BaseballField", "Port")):
        for i in range(1, _SAMPLE_N + 1):
            sample_image(Path(d) / c / f"{c.lower()}_{i}.jpg", (32, 32), 200 + 10 * ci + i, "JPEG")


def write_nwpu_sample(d: Path) -> None:
    """NWPU-RESISC45 layout: ``<class>/<class>_NNN.jpg`` (256×256 in the real set)."""
    for ci, c in enumerate(("baseball_diamond", "harbor", "sea_ice")):
        for i in range(1, _SAMPLE_N + 1):
            sample_image(Path(d) / c / f"{c}_{i:03d}.jpg", (32, 32), 300 + 10 * ci + i, "JPEG")


def write_eurosat_sample(d: Path) -> None:
    """EuroSAT RGB layout: ``<Class>/<Class>_N.jpg`` (64×64 in the real set)."""
    for ci, c in enumerate(("AnnualCrop", "Highway", "SeaLake")):
        for i in range(1, _SAMPLE_N + 1):
            sample_image(Path(d) / c / f"{c}_{i}.jpg", (32, 32), 400 + 10 * ci + i, "JPEG")


@source("ucm", env="UCM_ROOT", sample=write_ucm_sample)
def read_ucm(ctx: StepContext, *, root: Path) -> StepOutput:
    """UC Merced Land Use (21 classes, 2,100 tif images) from ``Images/<class>/*.tif``."""
    out = StepOutput()
    out.note("ucm.image_layout", "Images/*/*.tif (no official split: train)")
    return out.result(read_scene_folders(root, "ucm", "Images/*/*.tif"))


@source("aid", env="AID_ROOT", sample=write_aid_sample)
def read_aid(ctx: StepContext, *, root: Path) -> StepOutput:
    """AID (30 classes, 10,000 images) from ``<Class>/<class>_N.jpg``."""
    out = StepOutput()
    out.note("aid.image_layout", "*/*.jpg (no official split: train)")
    return out.result(read_scene_folders(root, "aid", "*/*.jpg"))


@source("nwpu_resisc45", env="NWPU_RESISC45_ROOT", sample=write_nwpu_sample)
def read_nwpu(ctx: StepContext, *, root: Path) -> StepOutput:
    """NWPU-RESISC45 (45 classes, 31,500 images) from ``<class>/<class>_NNN.jpg``."""
    out = StepOutput()
    out.note("nwpu_resisc45.image_layout", "*/*.jpg (no official split: train)")
    return out.result(read_scene_folders(root, "nwpu_resisc45", "*/*.jpg"))


@source("eurosat_rgb", env="EUROSAT_ROOT", sample=write_eurosat_sample)
def read_eurosat(ctx: StepContext, *, root: Path) -> StepOutput:
    """EuroSAT RGB (10 classes, 27,000 images) from ``<Class>/<Class>_N.jpg``."""
    out = StepOutput()
    out.note("eurosat_rgb.image_layout", "*/*.jpg (no official split: train)")
    return out.result(read_scene_folders(root, "eurosat_rgb", "*/*.jpg"))
