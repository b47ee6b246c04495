"""Source readers, registered by name (see :func:`geodata.registry.source`)."""

from . import mp16  # noqa: F401
from . import cvact, cvcities, cvusa, vigor  # noqa: F401,E401  (cross-view: Geo-R1 pairing)
from . import eo  # noqa: F401  (Earth-observation sources: GeoVLM-R1 instruction set)
from . import predictions  # noqa: F401  (model predictions: MP16-Hard-200K, eval)
