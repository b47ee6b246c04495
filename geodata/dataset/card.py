"""The dataset card (README.md): one renderer, named sections, one YAML header.

A card is a YAML header (what ``datasets.load_dataset`` and the Hub read) and named sections,
each between ``<!-- geodata-NAME:start -->`` and ``<!-- geodata-NAME:end -->``:

==========  ===================================  ===========================================
section     written by                           holds
==========  ===================================  ===========================================
build       ``geodata build`` (:func:`build_card`)  title, contents, how it was built, steps
report      ``geodata report``                   figure links and the summary; a rebuild
                                                 keeps it while the shards are unchanged
publish     ``geodata publish`` (its folder only)  licenses, provenance, validation, citations
==========  ===================================  ===========================================

Every command reads the card with :meth:`Card.parse`, replaces its own section with
:meth:`Card.with_section` and writes :meth:`Card.render`; sections always come out in the
order above, so the same sections give the same bytes. Text outside any section (a card
written by hand, or by an older geodata) is kept, before the sections.

Examples
--------
>>> card = Card({"license": "mit"}, {"report": "## Report", "build": "# Toy"})
>>> print(card.render())
---
license: mit
---
<BLANKLINE>
<!-- geodata-build:start -->
# Toy
<!-- geodata-build:end -->
<BLANKLINE>
<!-- geodata-report:start -->
## Report
<!-- geodata-report:end -->
<BLANKLINE>
>>> again = Card.parse(card.render())
>>> again == card, list(again.with_section("report", None).sections)
(True, ['build'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import GeodataError

if TYPE_CHECKING:
    from .folder import Manifest

__all__ = ["Card", "SECTIONS", "markers", "split_card", "build_card", "size_category"]

#: the named sections, in the order a card renders them (other names follow, sorted)
SECTIONS = ("build", "report", "publish")

_SECTION = re.compile(r"<!-- geodata-([a-z][a-z0-9_-]*):start -->\n?(.*?)\n?<!-- geodata-\1:end -->\n?", re.S)


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of section ``name``.

    >>> markers("publish")
    ('<!-- geodata-publish:start -->', '<!-- geodata-publish:end -->')
    """
    return f"<!-- geodata-{name}:start -->", f"<!-- geodata-{name}:end -->"


def split_card(text: str) -> tuple[dict[str, Any], str]:
    """Split a dataset card into its YAML header (a dict) and its markdown body.

    Examples
    --------
    >>> split_card("---\\nlicense: mit\\n---\\n# Title\\n")
    ({'license': 'mit'}, '# Title\\n')
    """
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        raise GeodataError("card: the yaml header opened by '---' is never closed")
    header = yaml.safe_load(text[3:end]) or {}
    if not isinstance(header, dict):
        raise GeodataError("card: the yaml header is not a mapping")
    body = text[end + 4 :]
    return header, body[1:] if body.startswith("\n") else body


@dataclass(frozen=True)
class Card:
    """A dataset card: its YAML ``header``, its named ``sections`` and any unmarked ``text``."""

    header: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> "Card":
        """Read a card; a header that is not YAML is a one-line :class:`GeodataError`."""
        try:
            header, body = split_card(text)
        except yaml.YAMLError as exc:
            raise GeodataError(f"card: invalid yaml header: {str(exc).splitlines()[0]}") from None
        sections = {m.group(1): m.group(2).strip("\n") for m in _SECTION.finditer(body)}
        return cls(header, sections, _SECTION.sub("", body).strip())

    def with_section(self, name: str, markdown: str | None) -> "Card":
        """This card with section ``name`` set to ``markdown`` (``None`` removes it)."""
        sections = {k: v for k, v in self.sections.items() if k != name}
        if markdown is not None:
            sections[name] = markdown.strip("\n")
        return Card(self.header, sections, self.text)

    def with_header(self, header: dict[str, Any]) -> "Card":
        return Card(dict(header), dict(self.sections), self.text)

    def body(self, without: tuple[str, ...] = ()) -> str:
        """The markdown below the header, leaving out the sections named in ``without``."""
        order = sorted(self.sections, key=lambda k: (SECTIONS.index(k) if k in SECTIONS else len(SECTIONS), k))
        parts = [self.text] if self.text else []
        for name in order:
            if name in without:
                continue
            start, end = markers(name)
            parts.append(f"{start}\n{self.sections[name]}\n{end}")
        return "\n\n".join(parts) + "\n" if parts else ""

    def render(self) -> str:
        """README.md: the YAML header, then the unmarked text, then the sections in order."""
        head = yaml.safe_dump(self.header, sort_keys=False, allow_unicode=True, width=1000) if self.header else ""
        out = f"---\n{head}---\n\n" if self.header else ""
        return out + self.body()


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows (the one definition: card and publish).

    Examples
    --------
    >>> [size_category(n) for n in (50, 1000, 200_000, 4_720_000, 2_000_000_000)]
    ['n<1K', '1K<n<10K', '100K<n<1M', '1M<n<10M', '1B<n<10B']
    """
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
              (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T")]
    for b, label in bounds:
        if n < b:
            return label
    return "n>1T"


def _header(manifest: "Manifest", features: dict[str, Any]) -> dict[str, Any]:
    card = manifest.spec.get("card", {})
    configs = []
    infos = []
    total = 0
    for config, splits in manifest.configs.items():
        data_files = []
        split_infos = []
        for split, info in splits.items():
            prefix = "data" if config == "default" else config
            data_files.append({"split": split, "path": f"{prefix}/{split}-*.parquet"})
            nbytes = sum(manifest.files[f].bytes for f in info.files)
            split_infos.append({"name": split, "num_bytes": nbytes, "num_examples": info.num_rows})
            total += info.num_rows
        entry: dict[str, Any] = {"config_name": config, "data_files": data_files}
        if config == manifest.default_config:
            entry["default"] = True
        configs.append(entry)
        infos.append(
            {
                "config_name": config,
                "features": features[config]._to_yaml_list(),
                "splits": split_infos,
                "download_size": sum(s["num_bytes"] for s in split_infos),
                "dataset_size": sum(s["num_bytes"] for s in split_infos),
            }
        )
    head: dict[str, Any] = {}
    if card.get("pretty_name"):
        head["pretty_name"] = card["pretty_name"]
    head["license"] = card.get("license", "other")
    head["source_datasets"] = card.get("source_datasets") or []
    head["task_categories"] = card.get("task_categories") or []
    head["tags"] = card.get("tags") or []
    head["size_categories"] = [size_category(total)]
    head["configs"] = configs
    head["dataset_info"] = infos
    return head


def _table(rows: list[list[Any]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def build_card(manifest: "Manifest", features: dict[str, Any]) -> Card:
    """The card of a fresh build: its header and its ``build`` section.

    The text holds no timings, dates, absolute paths or mtimes, so building the same spec and
    inputs gives the same card, in any folder.
    """
    spec = manifest.spec
    card = spec.get("card", {})
    name = manifest.name
    stats = manifest.stats
    lines = [f"# {card.get('pretty_name') or name}", ""]
    desc = card.get("description") or spec.get("description")
    if desc:
        lines += [desc.strip(), ""]
    bench = spec.get("benchmark")
    if bench:  # a benchmark pipeline (pipelines/bench/): what it is and how it is scored
        lines += ["## Benchmark", "", f"- benchmark: {bench['name']}", f"- paper: {bench['paper']}",
                  f"- protocol: {bench['protocol'].strip()}", f"- scorer: {bench['scorer'].strip()}"]
        if bench.get("reported_by"):
            lines.append(f"- reported by: {', '.join(bench['reported_by'])}")
        lines.append("")
    lines += ["## Contents", ""]
    rows = []
    for config, splits in manifest.configs.items():
        for split, info in splits.items():
            rows.append([config, split, info.num_rows, len(info.files)])
    lines += [_table(rows, ["config", "split", "rows", "shards"]), ""]
    lines += [
        "Row schema (shared by every geodata dataset): `id`, `source`, `task`, `images` (list of "
        "Image), `prompt` and `completion` (chat messages), `solution` (JSON: the verifiable "
        "answer), then metadata columns.",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{name}")  # or the local folder path',
        "```",
        "",
        "## How it was built",
        "",
        f"Built by geodata {manifest.geodata_version} from `{manifest.spec_file or name}`.",
        "",
        f"- spec fingerprint: `{manifest.spec_fingerprint}`",
    ]
    # no input fingerprint here: it hashes paths and mtimes (it lives in manifest.json), and the
    # card must be byte-identical for the same spec and inputs built in another folder
    if manifest.limits:
        lines.append("- limits: " + ", ".join(f"{k}={v}" for k, v in sorted(manifest.limits.items())))
    lines.append("- libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest.versions.items())))
    lines.append(f"- seed: {spec.get('seed')}")
    lines += ["", "### Steps", ""]
    srows = []
    for s in stats.steps:
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(s["drops"].items())) or "-"
        srows.append([s["step"], s["rows_in"], s["rows_out"], drops])
    lines += [_table(srows, ["step", "rows in", "rows out", "dropped (reason: rows)"]), ""]
    if stats.drops:
        lines += ["### Dropped rows", ""]
        lines += [_table([[k, v] for k, v in sorted(stats.drops.items())], ["reason", "rows"]), ""]
    if stats.notes:
        lines += ["### Notes", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(stats.notes.items())] + [""]
    if card.get("citations"):
        lines += ["## Citation", "", "```bibtex"]
        lines += [c.strip() for c in card["citations"]]
        lines += ["```", ""]
    return Card(_header(manifest, features), {"build": "\n".join(lines).strip()})
