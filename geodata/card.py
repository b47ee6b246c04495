"""Dataset card (README.md): the YAML header ``datasets.load_dataset`` reads, plus provenance."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["render_card", "size_category"]


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


def _header(manifest: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    card = spec.get("card", {})
    configs = []
    infos = []
    total = 0
    for config, splits in manifest["configs"].items():
        data_files = []
        split_infos = []
        for split, info in splits.items():
            prefix = "data" if config == "default" else config
            data_files.append({"split": split, "path": f"{prefix}/{split}-*.parquet"})
            nbytes = sum(manifest["files"][f]["bytes"] for f in info["files"])
            split_infos.append({"name": split, "num_bytes": nbytes, "num_examples": info["num_rows"]})
            total += info["num_rows"]
        entry: dict[str, Any] = {"config_name": config, "data_files": data_files}
        if config == manifest.get("default_config", "default"):
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


def render_card(manifest: dict[str, Any], features: dict[str, Any]) -> str:
    """Render README.md for a built dataset from its manifest and per-config features.

    The text holds no timings, dates, absolute paths or mtimes, so building the same spec and
    inputs gives the same card, in any folder.
    """
    spec = manifest["spec"]
    card = spec.get("card", {})
    name = manifest["name"]
    stats = manifest["stats"]
    header = yaml.safe_dump(_header(manifest, features), sort_keys=False, allow_unicode=True, width=1000)
    lines = [f"---\n{header}---", "", f"# {card.get('pretty_name') or name}", ""]
    desc = card.get("description") or spec.get("description")
    if desc:
        lines += [desc.strip(), ""]
    lines += ["## Contents", ""]
    rows = []
    for config, splits in manifest["configs"].items():
        for split, info in splits.items():
            rows.append([config, split, info["num_rows"], len(info["files"])])
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
        f"Built by geodata {manifest['geodata_version']} from `{manifest.get('spec_file', name)}`.",
        "",
        f"- spec fingerprint: `{manifest['spec_fingerprint']}`",
    ]
    # no input fingerprint here: it hashes paths and mtimes (it lives in manifest.json), and the
    # card must be byte-identical for the same spec and inputs built in another folder
    limits = manifest.get("limits") or {}
    if limits:
        lines.append("- limits: " + ", ".join(f"{k}={v}" for k, v in sorted(limits.items())))
    lines.append(
        "- libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest["versions"].items()))
    )
    lines.append(f"- seed: {spec.get('seed')}")
    lines += ["", "### Steps", ""]
    srows = []
    for s in stats["steps"]:
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(s["drops"].items())) or "-"
        srows.append([s["step"], s["rows_in"], s["rows_out"], drops])
    lines += [_table(srows, ["step", "rows in", "rows out", "dropped (reason: rows)"]), ""]
    if stats["drops"]:
        lines += ["### Dropped rows", ""]
        lines += [_table([[k, v] for k, v in sorted(stats["drops"].items())], ["reason", "rows"]), ""]
    if stats.get("notes"):
        lines += ["### Notes", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(stats["notes"].items())] + [""]
    if card.get("citations"):
        lines += ["## Citation", "", "```bibtex"]
        lines += [c.strip() for c in card["citations"]]
        lines += ["```", ""]
    return "\n".join(lines).rstrip() + "\n"
