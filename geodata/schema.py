"""The one row schema shared by every geodata dataset.

=============  ===============================  ===============================================
column         type                             meaning
=============  ===============================  ===============================================
id             string                           unique within the dataset
source         string                           source dataset (``mp16``, ``cvusa``, ``dota`` ...)
task           string                           picks the reward (``geolocation``, ``crossview_mcq`` ...)
images         list of Image                    embedded image bytes, in prompt order
prompt         list of chat messages            ``[{"role", "content": [{"type", "text"}]}]``
completion     list of chat messages            the gold assistant turn
solution       string (JSON)                    the verifiable answer the reward checks
...            metadata                         per dataset (lat, lon, country, h3 ...)
=============  ===============================  ===============================================

During a build ``images`` holds *references* (``list[str]``: a file path, or
``msgpack://FILE@OFFSET:LENGTH`` / ``tar://FILE@OFFSET:LENGTH``); the writer swaps them for
bytes shard by shard, so memory never holds more than one shard of images.

An image placeholder in a message is ``{"type": "image", "text": None}``; a text part is
``{"type": "text", "text": "..."}``. This is the conversational form that TRL's
``SFTTrainer`` and ``GRPOTrainer`` take together with an ``images`` column.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import polars as pl

__all__ = [
    "images_missing",
    "CORE_COLUMNS",
    "SYSTEM_THINK_ANSWER",
    "MESSAGE_DTYPE",
    "prompt_expr",
    "completion_expr",
    "solution_expr",
    "messages_text",
    "check_core_columns",
    "decimal_expr",
    "template_expr",
    "choose_template_expr",
]

CORE_COLUMNS: tuple[str, ...] = ("id", "source", "task", "images", "prompt", "completion", "solution")

PART_DTYPE = pl.Struct({"type": pl.String, "text": pl.String})
MESSAGE_DTYPE = pl.Struct({"role": pl.String, "content": pl.List(PART_DTYPE)})

#: Suffix that asks for the ``<think>…</think><answer>…</answer>`` structure (Geo-R1 wording).
THINK_ANSWER_SUFFIX = (
    "First output the thinking process in <think> </think> tags and then output the final "
    "answer in <answer> </answer> tags."
)

SYSTEM_THINK_ANSWER = (
    "You are a helpful assistant. You first think about the reasoning process and then give the "
    "answer. The reasoning is enclosed in <think> </think> tags and the answer in "
    "<answer> </answer> tags."
)


def _text_part(text: pl.Expr) -> pl.Expr:
    return pl.struct(type=pl.lit("text"), text=text.cast(pl.String))


def _image_part() -> pl.Expr:
    return pl.struct(type=pl.lit("image"), text=pl.lit(None, dtype=pl.String))


def _message(role: str, parts: Sequence[pl.Expr]) -> pl.Expr:
    return pl.struct(role=pl.lit(role), content=pl.concat_list(list(parts)))


def prompt_expr(text: pl.Expr | str, n_images: int = 1, system: str | None = None) -> pl.Expr:
    """Chat prompt: optional system turn, then a user turn of ``n_images`` images and ``text``.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"q": ["Where is this?"]}).select(prompt=prompt_expr(pl.col("q")))
    >>> df["prompt"][0].to_list()[0]["content"][1]["text"]
    'Where is this?'
    """
    if isinstance(text, str):
        text = pl.lit(text)
    msgs = []
    if system:
        msgs.append(_message("system", [_text_part(pl.lit(system))]))
    msgs.append(_message("user", [_image_part() for _ in range(n_images)] + [_text_part(text)]))
    return pl.concat_list(msgs)


def completion_expr(text: pl.Expr | str) -> pl.Expr:
    """Chat completion: one assistant turn holding ``text``."""
    if isinstance(text, str):
        text = pl.lit(text)
    return pl.concat_list([_message("assistant", [_text_part(text)])])


def solution_expr(**fields: pl.Expr) -> pl.Expr:
    """JSON-encode ``fields`` into the ``solution`` string column.

    Examples
    --------
    >>> import polars as pl
    >>> pl.DataFrame({"a": [1.5]}).select(s=solution_expr(lat=pl.col("a")))["s"][0]
    '{"lat":1.5}'
    """
    return pl.struct(**fields).struct.json_encode()


def messages_text(messages: Sequence[dict[str, Any]] | str) -> str:
    """The text of a message list (the parts of type ``text`` joined), or the string itself."""
    if isinstance(messages, str):
        return messages
    out: list[str] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            out.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text" and part.get("text"):
                out.append(part["text"])
    return "\n".join(out)


def load_solution(solution: str) -> Any:
    """Decode one ``solution`` JSON string."""
    return json.loads(solution)


def images_missing(images: pl.Expr) -> pl.Expr:
    """True where a row's ``images`` were not found: a null list or a null reference in it.

    An empty list is a metadata-only row, not a missing image.

    Examples
    --------
    >>> df = pl.DataFrame({"images": [["a.jpg"], None, [None], []]}, schema={"images": pl.List(pl.String)})
    >>> df.select(images_missing(pl.col("images")))["images"].to_list()
    [False, True, True, False]
    """
    return images.is_null() | images.list.eval(pl.element().is_null()).list.any().fill_null(False)


def check_core_columns(columns: Sequence[str], where: str) -> None:
    """Raise if any of the core columns is missing from ``columns``."""
    from .errors import BuildError

    missing = [c for c in CORE_COLUMNS if c not in columns]
    if missing:
        raise BuildError(
            f"{where}: rows lack the schema columns {missing} (expected {list(CORE_COLUMNS)}, "
            f"found {list(columns)})"
        )


def decimal_expr(col: pl.Expr | str, decimals: int = 6) -> pl.Expr:
    """Fixed-point text of a float column, e.g. ``-0.127800`` (vectorized, no Python loop).

    Examples
    --------
    >>> import polars as pl
    >>> pl.DataFrame({"x": [48.8566, -0.1278, -0.0000001]}).select(t=decimal_expr("x"))["t"].to_list()
    ['48.856600', '-0.127800', '0.000000']
    """
    c = pl.col(col) if isinstance(col, str) else col
    scale = 10**decimals
    micro = (c.abs() * scale).round(0).cast(pl.Int64)
    sign = pl.when((c < 0) & (micro > 0)).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = (micro // scale).cast(pl.String)
    frac = (micro % scale).cast(pl.String).str.zfill(decimals)
    return pl.concat_str([sign, whole, pl.lit("."), frac])


def template_expr(template: str, prefix: str = "_") -> pl.Expr:
    """Fill ``{name}`` slots of ``template`` from the columns ``<prefix><name>``, vectorized.

    Examples
    --------
    >>> import polars as pl
    >>> pl.DataFrame({"_city": ["Paris"]}).select(t=template_expr("near {city}."))["t"][0]
    'near Paris.'
    """
    parts: list[pl.Expr] = []
    rest = template
    while "{" in rest:
        pre, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        parts += [pl.lit(pre), pl.col(f"{prefix}{name}").cast(pl.String)]
    parts.append(pl.lit(rest))
    return pl.concat_str(parts)


def choose_template_expr(templates: Sequence[str], pick: pl.Expr, prefix: str = "_") -> pl.Expr:
    """Per row, the filled template whose index is ``pick`` (wording that varies by row)."""
    expr = pl.when(pick == 0).then(template_expr(templates[0], prefix))
    for i in range(1, len(templates)):
        expr = expr.when(pick == i).then(template_expr(templates[i], prefix))
    return expr
