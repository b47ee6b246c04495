"""Source readers, one module per source (or family folder), registered by name.

Every module in this package is imported by :func:`geodata.registry._load_all`, so a new
reader is one new file here; nothing else lists it.
"""
