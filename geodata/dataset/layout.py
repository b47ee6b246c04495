"""The layout of a folder geodata writes: its file names and the markers that say geodata wrote it.

One place for every name, so the writer, the :class:`~geodata.dataset.Dataset` object, the
ownership rules (:mod:`geodata.dataset.ownership`) and the commands agree on them.

>>> MANIFEST, CARD, STATS
('manifest.json', 'README.md', 'build_stats.json')
"""

from __future__ import annotations

__all__ = [
    "MANIFEST", "CARD", "STATS", "MANIFEST_MARKER", "SAMPLE_MARKER", "SAMPLE_TEXT", "SAMPLE_PARTIAL", "PUBLISH_MARKER",
    "TEMP_MARKER", "REPORT_MARKER", "IMAGES_SIDECAR", "FIXED_FILES",
]

#: a built dataset's typed manifest, its card and its build statistics
MANIFEST = "manifest.json"
CARD = "README.md"
STATS = "build_stats.json"
#: the manifest field (and value) that says geodata wrote the folder
MANIFEST_MARKER = ("written_by", "geodata")
SAMPLE_MARKER = ".complete"
SAMPLE_TEXT = "sample written by geodata\n"
#: the sample marker's first line while a sample is replaced file by file (``replace_sample``)
SAMPLE_PARTIAL = "sample being replaced by geodata\n"
PUBLISH_MARKER = "<!-- geodata-publish:start -->"
TEMP_MARKER = ".geodata-tmp"
#: the list of files ``geodata report`` wrote into a dataset folder
REPORT_MARKER = "report/.geodata-report.json"
#: the embedded image files of a build, with size and mtime (never published)
IMAGES_SIDECAR = ".geodata-images.arrow"  # Arrow IPC, not *.parquet: no shard glob matches it
#: the files of a dataset folder that geodata writes whatever the manifest lists
FIXED_FILES = (MANIFEST, CARD, STATS, IMAGES_SIDECAR, TEMP_MARKER)
