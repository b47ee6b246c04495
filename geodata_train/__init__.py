"""Thin TRL backends that train Qwen2.5-VL-style models on datasets built by geodata.

``geodata_train.sft``, ``geodata_train.grpo`` and ``geodata_train.predict`` each expose ``run(recipe, sets)``;
recipes (``geodata_train/recipes/*.yaml``) hold every hyper-parameter. Importing this package or
:mod:`geodata_train.recipe` / :mod:`geodata_train.data` does not import torch; the runners import
torch, transformers and TRL (the ``train`` extra) when they start.
"""
