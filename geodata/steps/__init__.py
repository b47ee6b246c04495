"""Pipeline steps, registered by name (see :func:`geodata.registry.step`)."""

from . import core, mp16  # noqa: F401
