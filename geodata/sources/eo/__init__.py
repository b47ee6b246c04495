"""Earth-observation sources for the GeoVLM-R1 instruction set (``pipelines/eo-instruct.yaml``).

One module per source family; :func:`geodata.registry._load_all` imports each, which registers
every reader:

=====================  ===================================  ============================
module                 readers (env var)                    family (``eo_family``)
=====================  ===================================  ============================
``scene``              ucm, aid, nwpu_resisc45, eurosat_rgb scene
``dota``               dota                                 objects
``dior``               dior                                 objects
``rsvqa``              rsvqa_lr, rsvqa_hr                   vqa
``captions``           rsicd, ucm_captions, sydney_captions caption
``levir``              levir_cd, levir_cc                   change
``geochat``            geochat_instruct                     geochat
=====================  ===================================  ============================

The box convention, system prompt and class-name normalization live in :mod:`.common`.
"""

