"""Output formats, one module each, chosen by a spec's ``output.format`` (default ``parquet``).

A format registers ``@output_format("name")`` on ``fn(df, root, prefix, *, config, split,
output, max_image_pixels, on_rows, runner)``: it writes one config/split of rows under
``root/prefix`` and returns a :class:`~geodata.dataset.writer.PartitionResult` (files with
sha256, bytes and rows; features; counted drops). The registry discovers every module here.
"""
