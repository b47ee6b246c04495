from . import eo  # noqa: F401  (Earth-observation task rewards)
from . import mcq  # noqa: F401  (Geo-R1 cross-view multiple choice)
from . import geolocation  # noqa: F401  (Geo-R distance, format and their product)
