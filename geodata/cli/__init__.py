"""The ``geodata`` command line (typer + rich): one module per command family.

=============  ==========================================================
module         commands
=============  ==========================================================
``build``      build, steps, demo
``query``      sql, show, inspect
``sources``    catalog, sample-data, check
``train``      train sft|grpo|doctor|validate|recipes|tiny-model, predict
``datasets``   validate, publish, report
``evaluation`` eval
``bench``      bench list
=============  ==========================================================

A command is a thin shell: it parses its options, calls the library (``geodata.engine``,
``geodata.validate``, ``geodata.publish`` ...) and prints; :func:`~geodata.cli.app.cli_errors`
turns a :class:`~geodata.errors.GeodataError` into one red line and exit code 2.
"""

from __future__ import annotations

from . import build, query, sources, datasets, evaluation, train, bench  # noqa: F401,I001 - each adds its commands (help order)
from .app import app, cli_errors, console, err, main

__all__ = ["app", "main", "console", "err", "cli_errors"]
