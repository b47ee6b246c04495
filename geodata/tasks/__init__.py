"""Tasks: one room per task family — its answer contract, its rewards and its scorers.

=======================  ====================================================================
module                   tasks
=======================  ====================================================================
``geolocation``          ``geolocation`` (Geo-R): coordinates, distance reward, accuracy at km
``mcq``                  ``crossview_mcq`` (Geo-R1): the answered letter
``eo.scene``             ``scene_cls``
``eo.multilabel``        ``multilabel_cls``
``eo.boxes``             ``detection``, ``referring``
``eo.vqa``               ``vqa``
``eo.caption``           ``image_caption``, ``region_caption``, ``change_caption``
``eo.change``            ``change_presence``
=======================  ====================================================================

Every module here is imported by :func:`geodata.registry._load_all`; a scorer registers with
:func:`geodata.registry.task`, a reward with :func:`geodata.registry.reward`. Adding a task is
adding one module (docs/architecture.md). Tasks never import sources or steps, nor torch.
"""
