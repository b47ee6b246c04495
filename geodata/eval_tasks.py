"""``geodata eval`` for every task: predictions (``id``, ``completion``) against a built dataset.

Each row of the dataset is scored by its ``task`` with the benchmark's own rule (docs/eval.md):

==================  =============================================================================
task                metrics
==================  =============================================================================
geolocation         ``acc@{1,25,200,750,2500}km``, median km, GeoScore (:mod:`geodata.evaluate`)
crossview_mcq       accuracy (the answered letter, :func:`geodata.rewards.mcq.extract_choice`)
scene_cls           accuracy, macro F1 over the gold classes (class synonyms count as equal)
multilabel_cls      sample F1 (mean), micro F1, exact-set accuracy
vqa                 accuracy per question type (RSVQA: counts / areas by bin, else normalized
                    exact match), overall accuracy (OA) and average accuracy over types (AA)
referring           Acc@0.5 (TEOChat's GeoChat scorer: gold boxes matched one-to-one at IoU ≥ 0.5
                    over all gold boxes), mean IoU of the first box with its best gold box
detection           mAP@0.5 (VOC all-point AP per class, rotated IoU, greedy matching), precision,
                    recall
*_caption           BLEU-1…4, METEOR, ROUGE-L, CIDEr (pycocoevalcap, corpus level)
change_presence     accuracy (yes / no)
==================  =============================================================================

An answer that cannot be read (no box, no number, no letter, empty) counts as wrong and is
counted in ``n_unparsed``. The result is one :class:`EvalReport` (pydantic), written as JSON.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from .contracts.eo import answer_boxes, extract_answer, label_key, label_set, normalize_answer, rotated_iou_matrix, yes_no
from .errors import SourceError

__all__ = [
    "TaskResult",
    "EvalReport",
    "load_task_truth",
    "evaluate_tasks",
    "evaluate_task_files",
    "voc_ap",
    "caption_metrics",
    "reference_table",
    "format_task_report",
    "is_geolocation_only",
]

CAPTION_TASKS = ("image_caption", "region_caption", "change_caption")


class TaskResult(BaseModel):
    """Metrics of one task (or one task within one group of a breakdown)."""

    task: str
    n: int
    n_unparsed: int
    metrics: dict[str, float | None]
    per_type: dict[str, dict[str, float]] = Field(default_factory=dict)


class EvalReport(BaseModel):
    """The one result schema of ``geodata eval`` on a task dataset."""

    predictions: str = "-"
    truth: str = "-"
    n_predictions: int
    n_unknown_ids: int
    n_truth: int
    n_truth_without_prediction: int
    tasks: dict[str, TaskResult]
    by: str | None = None
    breakdown: dict[str, dict[str, TaskResult]] = Field(default_factory=dict)
    compare: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# -- truth ------------------------------------------------------------------------------------
def load_task_truth(path: str | Path) -> pl.DataFrame:
    """Every row of a built dataset (all configs): ``id, task, source, split, solution`` (+ qtype, category).

    Examples
    --------
    >>> load_task_truth("/nonexistent/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geodata.dataset.DatasetError: no built dataset at /nonexistent/x (no manifest.json; run `geodata build x`)
    """
    from .dataset import Dataset

    ds = Dataset.open(path)
    d = ds.path
    files = [d / f for _, _, e in ds.split_entries() for f in e.files]
    if not files:
        raise SourceError(f"truth: {d}: the manifest lists no data files")
    want = ("id", "task", "source", "split", "solution", "qtype", "category")
    frames = []
    for f in files:
        cols = [c for c in pl.read_parquet_schema(f) if c in want]
        frames.append(pl.read_parquet(f, columns=cols))
    df = pl.concat(frames, how="diagonal_relaxed")
    for c in ("id", "task", "solution"):
        if c not in df.columns:
            raise SourceError(f"truth: {d}: no '{c}' column (found {df.columns})")
    for c in ("source", "split", "qtype", "category"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    return df.with_columns(pl.col("id").cast(pl.String)).unique("id", keep="first", maintain_order=True)


def is_geolocation_only(path: str | Path) -> bool:
    """True for a CSV / Parquet truth table or a dataset whose rows are all ``geolocation``."""
    p = Path(path)
    if p.is_file():
        return True
    try:
        df = load_task_truth(path)
    except Exception:  # noqa: BLE001 - let the geolocation path report its own error
        return True
    return set(df["task"].unique().to_list()) <= {"geolocation"}


# -- per task ---------------------------------------------------------------------------------
Scorer = Callable[[list[str], list[dict], dict], TaskResult]


def _mean(x: Sequence[float]) -> float:
    return float(np.mean(x)) if len(x) else 0.0


def _score_geolocation(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    from .evaluate import metrics
    from .parse import parse_coords

    p = parse_coords(pl.Series(comps, dtype=pl.String))
    lat = np.array([float(s.get("lat", s.get("latitude", np.nan))) for s in sols])
    lon = np.array([float(s.get("lon", s.get("longitude", np.nan))) for s in sols])
    m = metrics(np.asarray(p.lat, dtype=float), np.asarray(p.lon, dtype=float), lat, lon, geocode=opt.get("geocode", False))
    flat: dict[str, float | None] = {f"acc@{k}km": v for k, v in m["acc_km"].items()}
    for k in ("median_km", "geoscore_mean", "country_acc", "admin1_acc", "city_acc"):
        if k in m:
            flat[k] = m[k]
    return TaskResult(task="geolocation", n=m["n"], n_unparsed=m["n_unparsed"], metrics=flat)


def _score_mcq(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    from .rewards.mcq import extract_choice, gold_choice

    got = [extract_choice(c) for c in comps]
    ok = [g is not None and g == gold_choice(s) for g, s in zip(got, sols)]
    return TaskResult(task="crossview_mcq", n=len(comps), n_unparsed=sum(g is None for g in got),
                      metrics={"accuracy": _mean(ok)})


def _score_scene(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    pred = [label_key(extract_answer(c)) for c in comps]
    gold = [label_key(s["label"]) for s in sols]
    syn = [{label_key(x) for x in s.get("synonyms", [])} for s in sols]
    pred = [g if p in sy else p for p, g, sy in zip(pred, gold, syn)]
    ok = np.array([bool(p) and p == g for p, g in zip(pred, gold)])
    f1s = []
    for c in sorted(set(gold)):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        npred, ngold = sum(p == c for p in pred), sum(g == c for g in gold)
        f1s.append(2 * tp / (npred + ngold) if npred + ngold else 0.0)
    return TaskResult(task="scene_cls", n=len(comps), n_unparsed=sum(not p for p in pred),
                      metrics={"accuracy": _mean(ok), "macro_f1": _mean(f1s)})


def _score_multilabel(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    f1, exact, tp, npred, ngold, unparsed = [], [], 0, 0, 0, 0
    for c, s in zip(comps, sols):
        ans = extract_answer(c)
        unparsed += not ans
        p, g = label_set(ans), {label_key(x) for x in s["labels"]}
        f1.append(1.0 if not p and not g else 2 * len(p & g) / (len(p) + len(g)))
        exact.append(p == g)
        tp, npred, ngold = tp + len(p & g), npred + len(p), ngold + len(g)
    micro = 2 * tp / (npred + ngold) if npred + ngold else 1.0
    return TaskResult(task="multilabel_cls", n=len(comps), n_unparsed=unparsed,
                      metrics={"sample_f1": _mean(f1), "micro_f1": micro, "exact_match": _mean(exact)})


def _score_vqa(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    from .rewards.eo import vqa_correct

    by_type: dict[str, list[bool]] = defaultdict(list)
    allok, unparsed = [], 0
    for c, s in zip(comps, sols):
        ans = extract_answer(c)
        ok = vqa_correct(ans, s) if ans else None
        unparsed += ok is None
        by_type[str(s.get("qtype") or "other")].append(bool(ok))
        allok.append(bool(ok))
    per = {t: {"accuracy": _mean(v), "n": float(len(v))} for t, v in sorted(by_type.items())}
    return TaskResult(task="vqa", n=len(comps), n_unparsed=unparsed, per_type=per,
                      metrics={"overall_accuracy": _mean(allok),
                               "average_accuracy": _mean([v["accuracy"] for v in per.values()])})


def _match(pred: list[list[float]], gold: list[list[float]], size, thr: float) -> np.ndarray:
    """Greedy one-to-one matching by descending IoU (≥ thr): a true-positive flag per prediction."""
    tp = np.zeros(len(pred), dtype=bool)
    if not pred or not gold:
        return tp
    iou = rotated_iou_matrix(pred, gold, size)
    order = np.argsort(-iou, axis=None, kind="stable")
    used_g: set[int] = set()
    for k in order:
        p, g = divmod(int(k), iou.shape[1])
        if iou[p, g] < thr:
            break
        if tp[p] or g in used_g:
            continue
        tp[p] = True
        used_g.add(g)
    return tp


def _score_referring(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    """Acc@0.5 as TEOChat scores GeoChat referring: gold boxes matched (IoU ≥ 0.5, one-to-one) / gold boxes."""
    thr = opt.get("iou_threshold", 0.5)
    tp, n_gold, ious, unparsed = 0, 0, [], 0
    for c, s in zip(comps, sols):
        boxes = answer_boxes(extract_answer(c), s)
        gold = s["boxes"]
        n_gold += len(gold)
        if not boxes:
            unparsed += boxes is None
            ious.append(0.0)
            continue
        tp += int(_match(boxes, gold, s.get("size"), thr).sum())
        ious.append(float(rotated_iou_matrix(boxes[:1], gold, s.get("size")).max()))
    return TaskResult(task="referring", n=len(comps), n_unparsed=unparsed,
                      metrics={f"acc@{thr:g}": tp / n_gold if n_gold else 0.0, "mean_iou": _mean(ious)})


def voc_ap(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """VOC all-point-interpolated AP; tied scores are one operating point (order-independent).

    Examples
    --------
    >>> voc_ap(np.ones(4), np.array([1, 1, 0, 1]), 6)  # one point: recall 3/6 × precision 3/4
    0.375
    >>> voc_ap(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2)  # 1·1/2 + (2/3)·1/2
    0.8333333333333333
    """
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    s, t = np.asarray(scores, dtype=float)[order], np.asarray(tp, dtype=float)[order]
    ctp, cfp = np.cumsum(t), np.cumsum(1 - t)
    last = np.r_[s[1:] != s[:-1], True]
    rec, prec = ctp[last] / n_gt, ctp[last] / (ctp[last] + cfp[last])
    mrec, mpre = np.r_[0.0, rec, 1.0], np.r_[0.0, prec, 0.0]
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def _score_detection(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    thr = opt.get("iou_threshold", 0.5)
    per_class: dict[str, list] = defaultdict(lambda: [[], 0])
    unparsed, tp_all, npred_all, ngt_all = 0, 0, 0, 0
    for c, s in zip(comps, sols):
        ans = extract_answer(c)
        boxes = answer_boxes(ans, s)
        if boxes is None:
            boxes = []
            unparsed += normalize_answer(ans) not in ("none", "no", "there are none")
        tp = _match(boxes, s["boxes"], s.get("size"), thr)
        cls = per_class[str(s.get("category", "object"))]
        cls[0].extend(tp.tolist())
        cls[1] += len(s["boxes"])
        tp_all, npred_all, ngt_all = tp_all + int(tp.sum()), npred_all + len(boxes), ngt_all + len(s["boxes"])
    aps = {k: voc_ap(np.ones(len(v[0])), np.array(v[0], dtype=float), v[1]) for k, v in sorted(per_class.items())}
    valid = [v for v in aps.values() if not math.isnan(v)]
    per = {k: {"ap": v} for k, v in aps.items() if not math.isnan(v)}
    return TaskResult(task="detection", n=len(comps), n_unparsed=unparsed, per_type=per,
                      metrics={f"map@{thr:g}": _mean(valid),
                               "precision": tp_all / npred_all if npred_all else 0.0,
                               "recall": tp_all / ngt_all if ngt_all else 0.0})


_CAP_STRIP = re.compile(r"\{[^{}]*\}|</?p>")


def _cap_tokens(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", _CAP_STRIP.sub(" ", str(text)).lower()))


def caption_metrics(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, meteor: bool | None = None) -> tuple[dict[str, float | None], list[str]]:
    """Corpus BLEU-1…4, METEOR, ROUGE-L, CIDEr with pycocoevalcap (``notes`` say what was skipped).

    Tokenization is lower-case alphanumeric words with box tokens and ``<p>`` removed (the
    COCO PTB tokenizer needs Java; this matches it on plain captions). METEOR runs
    pycocoevalcap's METEOR 1.5 jar (paraphrase tables bundled, offline) when ``java`` is on the
    PATH (``meteor=None``: auto); otherwise it is reported as null with a note.

    Examples
    --------
    >>> m, _ = caption_metrics(["a red car"], [["a red car"]], meteor=False)
    >>> round(m["bleu_1"], 4), round(m["rouge_l"], 4)
    (1.0, 1.0)
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    notes: list[str] = []
    gts = {i: [_cap_tokens(r) or "<empty>" for r in rs] for i, rs in enumerate(refs)}
    res = {i: [_cap_tokens(h) or "<empty>"] for i, h in enumerate(hyps)}
    out: dict[str, float | None] = {}
    if not hyps:
        return {k: None for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")}, notes
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"bleu_{k + 1}": float(v) for k, v in enumerate(bleu)})
    use_meteor = shutil.which("java") is not None if meteor is None else meteor
    out["meteor"] = None
    if use_meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            out["meteor"] = float(scorer.compute_score(gts, res)[0])
        finally:
            del scorer  # its __del__ ends the java process
    else:
        notes.append("METEOR skipped: pycocoevalcap's METEOR 1.5 needs java on the PATH")
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    return out, notes


def _score_caption(task: str) -> Scorer:
    def score(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
        hyps = [extract_answer(c) for c in comps]
        m, notes = caption_metrics(hyps, [s["references"] for s in sols], meteor=opt.get("meteor"))
        opt.setdefault("_notes", set()).update(notes)
        return TaskResult(task=task, n=len(comps), n_unparsed=sum(not _cap_tokens(h) for h in hyps), metrics=m)

    return score


def _score_change(comps: list[str], sols: list[dict], opt: dict) -> TaskResult:
    got = [yes_no(extract_answer(c)) for c in comps]
    ok = [g is not None and g == bool(s["changed"]) for g, s in zip(got, sols)]
    return TaskResult(task="change_presence", n=len(comps), n_unparsed=sum(g is None for g in got),
                      metrics={"accuracy": _mean(ok)})


SCORERS: dict[str, Scorer] = {
    "geolocation": _score_geolocation,
    "crossview_mcq": _score_mcq,
    "scene_cls": _score_scene,
    "multilabel_cls": _score_multilabel,
    "vqa": _score_vqa,
    "referring": _score_referring,
    "detection": _score_detection,
    "change_presence": _score_change,
    **{t: _score_caption(t) for t in CAPTION_TASKS},
}


# -- driver -----------------------------------------------------------------------------------
def _score_frame(df: pl.DataFrame, opt: dict) -> dict[str, TaskResult]:
    out = {}
    for (task,), g in df.group_by(["task"], maintain_order=True):
        fn = SCORERS.get(str(task))
        if fn is None:
            raise SourceError(f"eval: no scorer for task '{task}' (tasks: {', '.join(sorted(SCORERS))})")
        comps = g["completion"].fill_null("").to_list()
        sols = [json.loads(s) for s in g["solution"].to_list()]
        out[str(task)] = fn(comps, sols, opt)
    return dict(sorted(out.items()))


def evaluate_tasks(
    pred: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    by: str | None = None,
    unknown_ids: str = "drop",
    geocode: bool = False,
    meteor: bool | None = None,
    iou_threshold: float = 0.5,
) -> EvalReport:
    """Score predictions (``id``, ``completion``) against task rows (:func:`load_task_truth`).

    Examples
    --------
    >>> truth = pl.DataFrame({"id": ["a", "b"], "task": ["change_presence"] * 2, "source": ["x", "y"],
    ...     "split": ["test"] * 2, "solution": ['{"changed": true}', '{"changed": false}']})
    >>> pred = pl.DataFrame({"id": ["a", "b"], "completion": ["<answer>yes</answer>", "maybe"]})
    >>> r = evaluate_tasks(pred, truth)
    >>> r.tasks["change_presence"].metrics["accuracy"], r.tasks["change_presence"].n_unparsed
    (0.5, 1)
    """
    if "completion" not in pred.columns:
        raise SourceError(f"eval: predictions need a 'completion' column for task datasets (found {pred.columns})")
    if by is not None and by not in ("source", "split"):
        raise SourceError(f"eval: --by must be source or split, got '{by}'")
    pred = pred.select(pl.col("id").cast(pl.String), pl.col("completion").cast(pl.String))
    dup = pred.group_by("id").len().filter(pl.col("len") > 1)
    if dup.height:
        raise SourceError(f"eval: duplicate prediction id '{dup['id'][0]}' ({dup.height} ids repeat)")
    joined = truth.join(pred, on="id", how="inner", maintain_order="left")
    unknown = pred.join(truth, on="id", how="anti")
    if pred.height and joined.height == 0:
        raise SourceError(f"eval: no prediction id is in the truth (e.g. prediction '{pred['id'][0]}', "
                          f"truth '{truth['id'][0] if truth.height else '-'}')")
    if unknown.height and unknown_ids == "error":
        raise SourceError(f"eval: {unknown.height} prediction ids are not in the truth (e.g. '{unknown['id'][0]}')")
    opt: dict[str, Any] = {"geocode": geocode, "meteor": meteor, "iou_threshold": iou_threshold}
    report = EvalReport(n_predictions=pred.height, n_unknown_ids=unknown.height, n_truth=truth.height,
                        n_truth_without_prediction=truth.height - joined.height, tasks=_score_frame(joined, opt), by=by)
    if by:
        for (val,), g in joined.with_columns(pl.col(by).fill_null("-")).group_by([by], maintain_order=True):
            report.breakdown[str(val)] = _score_frame(g, opt)
        report.breakdown = dict(sorted(report.breakdown.items()))
    report.notes = sorted(opt.get("_notes", set()))
    return report


def reference_table(method: str) -> list[dict[str, Any]]:
    """Published results of ``method`` from ``geodata/data/reference/<method>.csv``.

    Examples
    --------
    >>> [(r["benchmark"], r["metric"], r["value"]) for r in reference_table("geo-r")][:2]
    [('im2gps3k', 'acc@1km', 0.181), ('im2gps3k', 'acc@25km', 0.4153)]
    """
    base = resources.files("geodata").joinpath("data/reference")
    f = base.joinpath(f"{method}.csv")
    if not f.is_file():
        known = sorted(p.name[:-4] for p in base.iterdir() if p.name.endswith(".csv"))
        raise SourceError(f"eval: --compare {method}: no reference table (known: {', '.join(known)})")
    rows = list(csv.DictReader(f.read_text().splitlines()))
    for r in rows:
        r["value"] = float(r["value"])
    return rows


def evaluate_task_files(
    predictions: str | Path,
    truth: str | Path,
    *,
    by: str | None = None,
    compare: str | None = None,
    unknown_ids: str = "drop",
    geocode: bool = False,
    meteor: bool | None = None,
) -> EvalReport:
    """:func:`evaluate_tasks` on a predictions file and a built dataset (folder or name)."""
    from .sources.predictions import load_predictions, predictions_file

    if Path(truth).is_file():
        raise SourceError(f"eval: {truth} is a truth table; per-task scoring and --by need a built dataset (folder or name)")
    ppath = predictions_file(Path(predictions))
    pred = load_predictions(ppath)
    report = evaluate_tasks(pred, load_task_truth(truth), by=by, unknown_ids=unknown_ids, geocode=geocode, meteor=meteor)
    report.predictions, report.truth = str(ppath), str(truth)
    if compare:
        report.compare = compare_rows(report, reference_table(compare), compare)
    return report


def compare_rows(report: EvalReport | dict, refs: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """Reference rows with ``ours``: the same metric of ours (geolocation ``acc_km`` too), else null."""
    if isinstance(report, EvalReport):
        ours = {(t, k): v for t, r in report.tasks.items() for k, v in r.metrics.items()}
    else:  # the geolocation report of geodata.evaluate
        ours = {("geolocation", f"acc@{k}km"): v for k, v in report.get("acc_km", {}).items()}
        ours.update({("geolocation", k): report.get(k) for k in ("median_km", "geoscore_mean")})
    return [{"method": method, **r, "ours": ours.get((r["task"], r["metric"]))} for r in refs]


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.4f}" if abs(v) <= 1 else f"{v:.1f}"


def format_compare(rows: list[dict[str, Any]]) -> str:
    """The reference table beside ours, one line per published number."""
    lines = [f"{'benchmark':<12} {'metric':<16} {'published':>10} {'ours':>10}  method"]
    for r in rows:
        lines.append(f"{r['benchmark']:<12} {r['metric']:<16} {_fmt(r['value']):>10} {_fmt(r['ours']):>10}  {r['method']}")
    return "\n".join(lines)


def format_task_report(r: EvalReport) -> str:
    """Per-task table (and the breakdown) as plain text."""
    def table(tasks: dict[str, TaskResult], indent: str = "") -> list[str]:
        out = []
        for t, res in tasks.items():
            ms = "  ".join(f"{k} {_fmt(v)}" for k, v in res.metrics.items())
            out.append(f"{indent}{t:<16} n {res.n:<6} unparsed {res.n_unparsed:<5} {ms}")
            for qt, pm in res.per_type.items():
                out.append(f"{indent}  {qt:<14} " + "  ".join(f"{k} {int(v) if k == 'n' else _fmt(v)}" for k, v in pm.items()))
        return out

    lines = [f"predictions {r.predictions}  vs  truth {r.truth}",
             f"scored {sum(t.n for t in r.tasks.values())} rows (unparsed answers count as wrong)"]
    lines += table(r.tasks)
    for val, tasks in r.breakdown.items():
        lines.append(f"{r.by} = {val}")
        lines += table(tasks, "  ")
    counts = [f"unknown ids {r.n_unknown_ids}"] * bool(r.n_unknown_ids) + \
        [f"truth without prediction {r.n_truth_without_prediction}"] * bool(r.n_truth_without_prediction)
    if counts:
        lines.append("not scored " + ", ".join(counts))
    lines += [f"note: {n}" for n in r.notes]
    if r.compare:
        lines.append(format_compare(r.compare))
    return "\n".join(lines)
