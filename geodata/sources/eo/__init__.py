"""Earth-observation sources for the GeoVLM-R1 instruction set (``pipelines/eo-instruct.yaml``).

One module per source family (scene, objects, VQA, captions, change, GeoChat); the registry
imports each (:func:`geodata.registry._load_all`), which registers every reader. No list here
names them: ``geodata catalog`` prints the readers with their environment variables, and each
reader's rows carry its family in ``eo_family``.

The box convention, system prompt and class-name normalization live in :mod:`.common`.
"""
