"""Rewards, registered by name (see :func:`geodata.registry.reward`).

Every module in this package is imported by :func:`geodata.registry._load_all`.
"""
