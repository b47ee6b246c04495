"""Pipeline steps, registered by name (see :func:`geodata.registry.step`).

Every module in this package is imported by :func:`geodata.registry._load_all`, so a new
step is one new file here (or a function in an existing one); nothing else lists it.
"""
