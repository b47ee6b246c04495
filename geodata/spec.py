"""Pipeline specs: one YAML file per dataset.

A spec names its sources, an ordered list of steps and the output layout::

    name: mp16-rand-500k
    seed: 42
    sources:
      mp16: {reader: mp16}            # located by MP16_ROOT, else the embedded sample
    steps:
      - step: validate_coords
      - step: sample                  # --set sample.n=1000 overrides n
        n: ${SAMPLE_N:-500000}
    output: {shard_max_mb: 500}

Strings may use ``${VAR}`` and ``${VAR:-default}``; a value that is only an interpolation is
re-read as YAML, so ``n: ${N:-5}`` is the integer 5. ``--set a.b=value`` overrides any value:
the first component is a top-level key (``seed``, ``output``, ``sources`` ...) or a step id.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .paths import pipeline_dirs
from .errors import SpecError, did_you_mean
from .registry import get_source, get_step, validate_params

__all__ = [
    "Spec", "BenchmarkSpec", "StepSpec", "SourceSpec", "OutputSpec", "CardSpec", "load_spec", "find_spec", "interpolate",
    "apply_overrides", "parse_override", "set_path", "read_mapping", "validate_model",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str] | None = None, where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of ``value``."""
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in env and env[var] != "":
            return env[var]
        if default is not None:
            return default
        raise SpecError(f"{where}: environment variable {var} is not set and has no default")

    whole = _VAR.fullmatch(value)
    out = _VAR.sub(sub, value)
    if whole:
        return yaml.safe_load(out) if out != "" else None
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(BaseModel):
    """One source: ``reader`` (registered name), optional ``root``, reader params."""

    model_config = ConfigDict(extra="allow")
    reader: str
    root: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StepSpec(BaseModel):
    """One step: ``step`` (registered name), optional ``id`` (default: the name), params."""

    model_config = ConfigDict(extra="allow")
    step: str
    id: str | None = None
    #: a join's input tables: its parameter name -> a source name, an earlier step's id
    #: (the one table it provides), ``<step id>.<table>`` or ``<source>.<table>`` (a table its reader provides)
    inputs: dict[str, str] = Field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def key(self) -> str:
        return self.id or self.step


class OutputSpec(_Strict):
    """Layout of the written dataset."""

    shard_max_mb: float = Field(500, gt=0, description="largest Parquet shard, MB")
    row_group_rows: int = Field(256, gt=0, description="rows per Parquet row group")
    map_chunk_rows: int = Field(
        100_000, gt=0,
        description="rows per chunk of a map step on the runner (fixed by the plan, so every runner "
        "and worker count gives the same bytes; a frame this size or smaller is one chunk)",
    )
    config_by: str | None = Field(None, description="column whose values become configs")
    split_by: str | None = Field(None, description="column whose values become splits")
    split: str = Field("train", description="split name when split_by is unset")
    default_config: str = "default"
    check_images: bool = Field(True, description="decode every image; drop undecodable ones")
    metadata_columns: list[str] | None = Field(
        None, description="columns kept besides the schema columns (default: all)"
    )
    format: str = Field("parquet", description="output format: the name a module in geodata/formats registers")


class CardSpec(_Strict):
    """Dataset-card facts."""

    pretty_name: str | None = None
    description: str = ""
    license: str = "other"
    source_datasets: list[str] = Field(default_factory=list)
    task_categories: list[str] = Field(default_factory=lambda: ["image-text-to-text"])
    citations: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=lambda: ["geospatial", "geolocation"])


class BenchmarkSpec(_Strict):
    """What a benchmark pipeline (``pipelines/bench/``) builds: named on its card and by ``geodata bench list``."""

    name: str = Field(description="the benchmark (IM2GPS3K, CVUSA test ...)")
    paper: str = Field(description="the paper that defines the benchmark (title, venue, arXiv)")
    protocol: str = Field(description="the evaluation protocol: split, what is asked, what is counted")
    scorer: str = Field(description="how geodata eval scores it and whose scoring code it follows")
    reported_by: list[str] = Field(default_factory=list, description="methods (papers) that report it")


class Spec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    seed: int = 0
    sources: dict[str, SourceSpec]
    input: str | None = None
    steps: list[StepSpec] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    card: CardSpec = Field(default_factory=CardSpec)
    #: set by the benchmark pipelines (``pipelines/bench/``): the card names it, its paper, protocol and scorer
    benchmark: BenchmarkSpec | None = None
    max_drop_fraction: float = Field(
        0.5, ge=0, le=1,
        description="a step (or source read) that loses more than this fraction of its rows for one "
        "data-loss reason (missing/undecodable/too large image, invalid coordinates, malformed record) fails",
    )
    min_prediction_coverage: float = Field(
        0.5, ge=0, le=1, description="join_predictions fails when fewer than this fraction of rows get a prediction",
    )
    max_image_pixels: int = Field(
        400_000_000, gt=0, description="images with more pixels are dropped as image_too_large (20000x20000 fits)",
    )

    #: the YAML file the spec came from
    path: Path | None = Field(default=None, exclude=True)

    @property
    def input_name(self) -> str:
        return self.input or next(iter(self.sources))

    def step_keys(self) -> list[str]:
        return [s.key for s in self.steps]

    def canonical(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude={"path"})
        for st in out["steps"]:  # a step without inputs reads as before (same fingerprint)
            if not st.get("inputs"):
                st.pop("inputs", None)
        if out.get("benchmark") is None:  # a spec without it reads as before (same fingerprint)
            out.pop("benchmark", None)
        if out["output"].get("format") == "parquet":  # the default format reads as before (same fingerprint)
            out["output"].pop("format")
        return out

    def fingerprint(self) -> str:
        """sha256 of the resolved spec (after interpolation and overrides)."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_override(item: str, where: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into its key path and YAML-parsed value."""
    key, eq, text = item.partition("=")
    if not eq or not key.strip():
        raise SpecError(f"{where}: --set '{item}' is not of the form key=value")
    if not text.strip():
        raise SpecError(
            f"{where}: --set '{item}': empty value; give one (write key=null to unset it explicitly)"
        )
    return key.strip().split("."), _parse_value(text)


def set_path(target: Any, parts: list[str], value: Any, where: str) -> None:
    """Set ``target[parts[0]]...[parts[-1]] = value``, creating missing mappings."""
    key = ".".join(parts)
    for i, p in enumerate(parts[:-1]):
        nxt = target.get(p) if isinstance(target, dict) else None
        if nxt is None:
            if not isinstance(target, dict):
                raise SpecError(f"{where}: --set '{key}': '{'.'.join(parts[:i])}' is not a mapping")
            nxt = target[p] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"{where}: --set '{key}': '{'.'.join(parts[: i + 1])}' is not a mapping")
        target = nxt
    if not isinstance(target, dict):
        raise SpecError(f"{where}: --set '{key}' does not address a mapping")
    target[parts[-1]] = value


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a {what}")
    return raw


def validate_model(model: type[BaseModel], raw: dict[str, Any], where: str) -> Any:
    """``model.model_validate(raw)``; errors become one SpecError naming ``where`` and each key."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                fields = _fields_at(model, err["loc"][:-1])
                hint = did_you_mean(str(err["loc"][-1]), fields) if fields else ""
                msgs.append(f"unknown key '{key}'{hint}" + (f" (allowed: {', '.join(sorted(fields))})" if fields else ""))
            else:
                msgs.append(f"'{key}': {err['msg'].lower()} (got {err.get('input')!r})")
        raise SpecError(f"{where}: " + "; ".join(msgs)) from None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at ``loc`` below ``model`` (empty when not a model)."""
    import typing

    cur: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = cur.model_fields.get(str(part)) if isinstance(cur, type) and issubclass(cur, BaseModel) else None
        if field is None:
            return []
        cur = field.annotation
        for arg in (*typing.get_args(cur), cur):  # Optional[X], list[X]: the model inside
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                cur = arg
                break
    if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
        return []
    return [f for f in cur.model_fields if f != "path"]


def apply_overrides(raw: dict[str, Any], sets: Iterable[str], where: str) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to the raw spec mapping."""
    raw = copy.deepcopy(raw)
    top = set(Spec.model_fields) - {"path"}
    for item in sets:
        parts, value = parse_override(item, where)
        if parts[0] in top:
            set_path(raw, parts, value, where)
            continue
        steps = raw.get("steps") or []
        ids = [s.get("id") or s.get("step") for s in steps if isinstance(s, dict)]
        key = ".".join(parts)
        if parts[0] not in ids:
            raise SpecError(
                f"{where}: --set '{key}': '{parts[0]}'{did_you_mean(parts[0], [*top, *map(str, ids)])} is neither a top-level key "
                f"({', '.join(sorted(top))}) nor a step id ({', '.join(map(str, ids))})"
            )
        if len(parts) < 2:
            raise SpecError(f"{where}: --set '{key}' must name a step parameter, e.g. {parts[0]}.n")
        set_path(steps[ids.index(parts[0])], parts[1:], value, where)
    return raw


def find_spec(name_or_path: str | Path, search: Iterable[Path] | None = None) -> Path:
    """Locate ``pipelines/<name>.yaml`` (or accept a path to a YAML file)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SpecError(f"spec file {p} does not exist")
        return p
    dirs = list(search) if search is not None else pipeline_dirs()
    for d in dirs:
        for cand in (d / f"{name_or_path}.yaml", d / BENCH_DIR / f"{name_or_path}.yaml"):
            if cand.exists():
                return cand
    known = sorted({f.stem for d in dirs if d.is_dir() for f in [*d.glob("*.yaml"), *(d / BENCH_DIR).glob("*.yaml")]})
    raise SpecError(f"unknown pipeline '{name_or_path}'{did_you_mean(str(name_or_path), known)} (known: {', '.join(known) or 'none'})")


#: the benchmark pipelines' folder inside a pipelines folder (``pipelines/bench/bench-im2gps3k.yaml``)
BENCH_DIR = "bench"


def _check_inputs(spec: Spec, i: int, info: Any, earlier: set[str], where: str) -> None:
    """A join names every input it needs (a source, an earlier step or ``step.table``); others name none."""
    st = spec.steps[i]
    at = f"{where}: steps[{i}] ({st.key})"
    sources = ", ".join(spec.sources)
    if info.kind != "join":
        if st.inputs:
            raise SpecError(f"{at}: inputs: a {info.kind} step takes no input tables (only join steps do)")
        return
    missing = [n for n in info.inputs if n not in st.inputs]
    if missing:
        raise SpecError(
            f"{at}: join step '{st.step}' needs input {', '.join(repr(m) for m in missing)}: give "
            f"'inputs: {{{missing[0]}: <source>}}' naming one of the spec's sources ({sources}) or an earlier step"
        )
    allowed = set(info.inputs) | set(info.optional_inputs)
    for name, ref in st.inputs.items():
        if (name not in allowed and not info.any_inputs) or name in info.params.model_fields or name == "df":
            raise SpecError(f"{at}: inputs: unknown input '{name}' (allowed: {', '.join(sorted(allowed)) or 'any name but a parameter'})")
        head = ref.split(".", 1)[0]  # <source>.<table> / <step>.<table>: a table a reader or step provides
        if ref not in spec.sources and ref not in earlier - {st.key} and head not in earlier - {st.key} \
                and not ("." in ref and head in spec.sources):
            raise SpecError(
                f"{at}: inputs.{name}: '{ref}' is neither a source of the spec ({sources}) "
                f"nor an earlier step"
            )


def load_spec(
    name_or_path: str | Path, sets: Iterable[str] = (), env: dict[str, str] | None = None
) -> Spec:
    """Read, interpolate, override and validate a spec; every error names the file and key."""
    path = find_spec(name_or_path)
    where = str(path)
    raw = read_mapping(path, "spec must be a mapping with name, sources and steps")
    raw = apply_overrides(raw, sets, where)
    raw = interpolate(raw, env, "")
    spec = validate_model(Spec, raw, where)
    spec.path = path
    # validate readers and steps against the registry (unknown names, unknown params, types)
    for sname, src in spec.sources.items():
        info = get_source(src.reader)
        src.__pydantic_extra__ = validate_params(info.params, src.params, f"{where}: sources.{sname}")  # normalized values
    seen: set[str] = set()
    for i, st in enumerate(spec.steps):
        try:
            info = get_step(st.step)
        except SpecError as exc:
            raise SpecError(f"{where}: steps[{i}]: {exc}") from None
        if st.key in seen:
            raise SpecError(f"{where}: steps[{i}]: duplicate step id '{st.key}' (give it an 'id')")
        seen.add(st.key)
        st.__pydantic_extra__ = validate_params(info.params, st.params, f"{where}: steps[{i}] ({st.key})")
        _check_inputs(spec, i, info, seen, where)
    if spec.input_name not in spec.sources:
        raise SpecError(f"{where}: input '{spec.input_name}' is not a source ({sorted(spec.sources)})")
    return spec
