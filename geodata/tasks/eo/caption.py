"""Captions (tasks ``image_caption``, ``region_caption``, ``change_caption``).

Contract: ``solution = {"references": [...]}``; box tokens and ``<p>`` markers of grounded
descriptions are not caption words. Reward (training): ROUGE-L and self-normalised METEOR,
best over the references. Scorer (eval): the COCO caption pipeline (``pycocoevalcap`` 1.2:
BLEU-1…4, METEOR 1.5, ROUGE-L, CIDEr, corpus level) with its **PTB tokenizer** when ``java``
is on the PATH (``salaniz/pycocoevalcap`` ``tokenizer/ptbtokenizer.py``: "café"
stays one word, "3.5" one number, hyphenated words one token); without Java a lower-case
alphanumeric tokenizer runs instead and the report says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ...errors import SourceError
from ...registry import reward, task
from ..base import ScoreContext, TaskResult, solutions as _solutions
from .contract import extract_answer

__all__ = ["eo_caption", "caption_score", "caption_metrics", "CAPTION_TASKS"]

CAPTION_TASKS = ("image_caption", "region_caption", "change_caption")


class _NoSynonyms:
    """WordNet stand-in for nltk's METEOR: no synonyms (exact + stem matching only)."""

    @staticmethod
    def synsets(word: str) -> list:  # noqa: D401 - nltk interface
        return []


_STRIP = re.compile(r"\{[^{}]*\}|</?p>")


def _caption_tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", _STRIP.sub(" ", text).lower())


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


def _meteor(ref: list[str], hyp: list[str]) -> float:
    from nltk.translate.meteor_score import single_meteor_score

    return float(single_meteor_score(ref, hyp, stemmer=_stemmer(), wordnet=_NoSynonyms()))


def caption_score(hypothesis: str, references: Sequence[str], rouge_weight: float = 0.5) -> float:
    """``max_r [w·ROUGE-L_F(h, r) + (1 − w)·min(1, METEOR(h, r) / METEOR(r, r))]``.

    Box tokens and ``<p>`` markers are removed first (grounded descriptions).

    Examples
    --------
    >>> refs = ["many planes are parked at the airport", "an airport with a runway"]
    >>> caption_score("many planes are parked at the airport", refs)
    1.0
    >>> 0.3 < caption_score("planes parked at an airport", refs) < 1.0
    True
    >>> caption_score("", refs)
    0.0
    """
    hyp = _caption_tokens(hypothesis)
    if not hyp:
        return 0.0
    best = 0.0
    hyp_text = " ".join(hyp)
    for r in references:
        ref = _caption_tokens(r)
        if not ref:
            continue
        if ref == hyp:
            return 1.0
        rl = _rouge().score(" ".join(ref), hyp_text)["rougeL"].fmeasure
        self_m = _meteor(ref, ref)
        met = min(1.0, _meteor(ref, hyp) / self_m) if self_m > 0 else 0.0
        best = max(best, rouge_weight * rl + (1 - rouge_weight) * met)
    return float(best)


@reward("eo_caption", tasks=("image_caption", "region_caption", "change_caption"))
def eo_caption(completions: Sequence[Any], solutions: Sequence[str], *, rouge_weight: float = 0.5) -> np.ndarray:
    """Caption reward: ROUGE-L and self-normalized METEOR, best over the references.

    Examples
    --------
    >>> sol = ['{"task": "image_caption", "references": ["a river runs through green fields"]}']
    >>> eo_caption(["<think>.</think><answer>A river runs through green fields.</answer>"], sol).tolist()
    [1.0]
    """
    return np.array(
        [caption_score(extract_answer(c), s["references"], rouge_weight) for c, s in zip(completions, _solutions(solutions))],
        dtype=float,
    )


_CAP_STRIP = re.compile(r"\{[^{}]*\}|</?p>")


def _simple_tokens(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", _CAP_STRIP.sub(" ", str(text)).lower()))


def _ptb_tokenize(texts: dict[int, list[str]]) -> dict[int, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    stripped = {i: [{"caption": " ".join(_CAP_STRIP.sub(" ", t).split()) or "<empty>"} for t in ts]
                for i, ts in texts.items()}
    return PTBTokenizer().tokenize(stripped)


def caption_metrics(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, meteor: bool | None = None,
                    tokenizer: str = "auto") -> tuple[dict[str, float | None], list[str]]:
    """Corpus BLEU-1…4, METEOR, ROUGE-L, CIDEr with pycocoevalcap (``notes`` say what ran).

    ``tokenizer``: ``ptb`` (COCO's PTB tokenizer, needs ``java``), ``simple`` (lower-case
    alphanumeric words) or ``auto`` (PTB when ``java`` is on the PATH). METEOR runs
    pycocoevalcap's METEOR 1.5 jar (paraphrase tables bundled, offline) when ``java`` is on the
    PATH (``meteor=None``: auto); otherwise it is null with a note.

    Examples
    --------
    >>> m, notes = caption_metrics(["a red car"], [["a red car"]], meteor=False, tokenizer="simple")
    >>> round(m["bleu_1"], 4), round(m["rouge_l"], 4), notes[-1]
    (1.0, 1.0, 'caption tokenizer: simple (lower-case alphanumeric words)')
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    notes: list[str] = []
    if not hyps:
        return {k: None for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")}, notes
    java = shutil.which("java") is not None
    if tokenizer not in ("auto", "ptb", "simple"):
        raise SourceError(f"eval: --tokenizer must be auto, ptb or simple, got {tokenizer!r}")
    use_ptb = java if tokenizer == "auto" else tokenizer == "ptb"
    ptb_error = ""
    if use_ptb:
        if not java:
            raise SourceError("eval: --tokenizer ptb needs java on the PATH (or use --tokenizer simple)")
        n = len(hyps)
        try:
            tok = _ptb_tokenize({**{i: list(rs) for i, rs in enumerate(refs)}, **{n + i: [h] for i, h in enumerate(hyps)}})
        except (OSError, subprocess.SubprocessError) as exc:  # e.g. a read-only pycocoevalcap folder
            if tokenizer == "ptb":
                raise SourceError(f"eval: the PTB tokenizer failed: {exc} (use --tokenizer simple)") from None
            use_ptb, ptb_error = False, f"; the PTB tokenizer failed ({type(exc).__name__}: {exc})"
    if use_ptb:
        gts = {i: [t or "<empty>" for t in tok[i]] for i in range(n)}
        res = {i: [tok[n + i][0] or "<empty>"] for i in range(n)}
        tok_note = "caption tokenizer: ptb (pycocoevalcap PTBTokenizer, Stanford CoreNLP 3.4.1)"
    else:
        gts = {i: [_simple_tokens(r) or "<empty>" for r in rs] for i, rs in enumerate(refs)}
        res = {i: [_simple_tokens(h) or "<empty>"] for i, h in enumerate(hyps)}
        tok_note = ("caption tokenizer: simple (lower-case alphanumeric words)"
                    + (ptb_error or ("" if tokenizer == "simple" else "; java not on the PATH, so not COCO's PTB tokenizer")))
    out: dict[str, float | None] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"bleu_{k + 1}": float(v) for k, v in enumerate(bleu)})
    use_meteor = java if meteor is None else meteor
    out["meteor"] = None
    if use_meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            out["meteor"] = float(scorer.compute_score(gts, res)[0])
        finally:
            del scorer  # its __del__ ends the java process
    else:
        notes.append("METEOR skipped: " + ("pycocoevalcap's METEOR 1.5 needs java on the PATH" if not java else "not asked for"))
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    notes.append(tok_note)
    return out, notes


def _scorer(name: str):
    def score(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
        hyps = [extract_answer(c) for c in comps]
        m, notes = caption_metrics(hyps, [s["references"] for s in sols], meteor=ctx.meteor, tokenizer=ctx.tokenizer)
        ctx.notes.update(notes)
        return TaskResult(task=name, n=len(comps), n_unparsed=sum(not _simple_tokens(h) for h in hyps), metrics=m)

    score.__doc__ = f"COCO caption metrics of ``{name}`` answers (:func:`caption_metrics`)."
    return score


for _t in CAPTION_TASKS:
    task(_t, reference="salaniz/pycocoevalcap (pip pycocoevalcap 1.2) tokenizer/ptbtokenizer.py")(_scorer(_t))
