"""Cross-view sources for Geo-R1's ground/satellite pairs (``pipelines/crossview-pairs.yaml``).

One module per dataset (``cvusa``, ``cvact``, ``vigor``, ``cvcities``), each registering its
reader; the common frame and the bad-input rule all four follow live in :mod:`.common`.
``geodata catalog`` lists the readers, their environment variables and evidence.
"""
