"""Thin TRL backends that train Qwen2.5-VL-style models on datasets built by geodata.

``training.sft``, ``training.grpo`` and ``training.predict`` each expose ``run(recipe, sets)``;
recipes (``training/recipes/*.yaml``) hold every hyper-parameter. Importing this package or
:mod:`training.recipe` / :mod:`training.data` does not import torch; the runners import
torch, transformers and TRL (the ``train`` extra) when they start.
"""
