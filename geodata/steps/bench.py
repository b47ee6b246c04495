"""Steps of the benchmark pipelines (``pipelines/bench/``): keep a benchmark's evaluation split whole."""

from __future__ import annotations

import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError
from ..registry import step

__all__ = ["eval_split"]


@step("eval_split", kind="frame")
def eval_split(df: pl.DataFrame, ctx: StepContext, *, splits: list[str], column: str = "split") -> StepOutput:
    """Keep the rows of the benchmark's evaluation ``splits`` (e.g. ``[test]``), whole and in order.

    Rows of other splits (a release's train / validation) are counted as ``not_eval_split``;
    none left is an error naming the splits found.

    Examples
    --------
    >>> rows = pl.DataFrame({"id": ["a", "b", "c"], "split": ["train", "test", "test"]})
    >>> res = eval_split(rows, StepContext(name="eval_split"), splits=["test"])
    >>> res.rows["id"].to_list(), res.drops
    (['b', 'c'], {'not_eval_split': 1})
    """
    if column not in df.columns:
        raise BuildError(f"{ctx.name}: column '{column}' is not in the rows ({df.columns})")
    keep = df.filter(pl.col(column).is_in(splits))
    if keep.height == 0:
        found = sorted(str(s) for s in df[column].unique().to_list())
        raise BuildError(f"{ctx.name}: no row of split {splits} (found {found or 'no rows'}): "
                         "point the source's root at a release that holds its evaluation split")
    out = StepOutput()
    out.drop("not_eval_split", df.height - keep.height)
    return out.result(keep)
