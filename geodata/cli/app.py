"""The ``geodata`` application: the typer app, its consoles and the one error rule of every command.

Each command family is a module beside this one (:mod:`geodata.cli`) that adds its commands to
:data:`app`; a command parses its options, calls the library and prints.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import typer
from rich.console import Console
from rich.text import Text

from ..errors import GeodataError
from ..paths import debug

app = typer.Typer(
    help="Build, inspect and publish geospatial-reasoning datasets for VLM post-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# markup=False everywhere: nothing a user typed or a path holds ('/data/[old]/mp16', 'grpo[vqa]')
# is read as rich markup; styled words are Text objects
console = Console(markup=False)
err = Console(stderr=True, markup=False)
_DEBUG = {"on": False}


def _debug() -> bool:
    return _DEBUG["on"] or debug()


def _error_line(msg: str) -> Text:
    return Text.assemble(("error:", "red"), " ", " ".join(str(msg).split("\n")))


class _LineFormatter(logging.Formatter):
    """``warning: message`` on one line (no wrapping: paths stay whole, copy-pasteable)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {' '.join(record.getMessage().splitlines())}"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn geodata's input errors (and OS errors) into one red line and exit code 2.

    ``--debug`` (or ``GEODATA_DEBUG=1``) shows the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (GeodataError, OSError) as exc:
            if _debug():
                raise
            msg = str(exc) if isinstance(exc, GeodataError) else f"{type(exc).__name__}: {exc}"
            err.print(_error_line(msg), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log each drop and stage"),
    debug: bool = typer.Option(False, "--debug", help="show the traceback of an error (also GEODATA_DEBUG=1)"),
) -> None:
    _DEBUG["on"] = debug
    _setup_logging(verbose)


def main() -> None:  # pragma: no cover - console entry point
    app()
