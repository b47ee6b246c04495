"""Earth-observation tasks (GeoVLM-R1's eo-instruct): one module per task family.

``contract`` is what the families share (task names, box conventions and geometry, answer
reading, class names, RSVQA bins); ``format`` the think / answer format reward; ``scene``,
``multilabel``, ``boxes`` (detection, referring), ``vqa``, ``caption`` and ``change`` each hold a
family's rewards and scorers. The names below are re-exported for convenience.
"""

from .boxes import detection_score, eo_detection, eo_referring, match_boxes, voc_ap
from .caption import caption_metrics, caption_score, eo_caption
from .change import eo_change, yes_no_first
from .contract import extract_answer, parse_numeric
from .format import eo_format
from .multilabel import eo_multilabel
from .scene import eo_scene_cls
from .vqa import eo_vqa, token_jaccard, vqa_correct

__all__ = [
    "extract_answer",
    "eo_format",
    "eo_scene_cls",
    "eo_multilabel",
    "eo_detection",
    "eo_referring",
    "eo_vqa",
    "eo_caption",
    "eo_change",
    "detection_score",
    "parse_numeric",
    "vqa_correct",
    "token_jaccard",
    "caption_score",
    "caption_metrics",
    "match_boxes",
    "voc_ap",
    "yes_no_first",
]
