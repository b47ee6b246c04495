"""Pipeline steps, registered by name (see :func:`geodata.registry.step`)."""

from . import core, mp16  # noqa: F401
from . import crossview, scaffold  # noqa: F401,E401  (Geo-R1: cross-view pairing, scaffolding CoT)
from . import eo  # noqa: F401  (Earth-observation instruction set)
from . import hard  # noqa: F401  (MP16-Hard-200K: hotspots, exclusion, diverse sampling)
from . import eo_tiles, splits  # noqa: F401  (DOTA-style tiling; split hygiene)
from . import predict  # noqa: F401  (a served model's predictions, via geodata.inference)
