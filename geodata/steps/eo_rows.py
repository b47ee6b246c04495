"""What the EO row builders share (:mod:`geodata.steps.eo`, :mod:`geodata.steps.eo_series`): one
task row in the builders' columns, and the row's box convention."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..tasks.eo.contract import boxes_to_qwen, format_box, format_boxes, format_qwen, qwen_to_boxes, smart_resize
from ..errors import SpecError

__all__ = ["BOX_HINT", "row", "Boxes"]

BOX_HINT = {
    "geochat": "Write each box as {<x1><y1><x2><y2>|<θ>} with whole numbers on a 0-100 grid of the image.",
    "qwen": 'Answer in JSON as [{"bbox_2d": [x1, y1, x2, y2], "label": "name"}] in pixels of the image.',
}


def row(rid: str, source: str, task: str, images: list[str], text: str, answer: str, solution: dict,
        split: str, category: str | None = None, qtype: str | None = None) -> dict[str, Any]:
    """One task row: ``images`` in prompt order, ``solution`` as sorted JSON with its ``task``."""
    return {"id": rid, "source": source, "task": task, "images": images, "text": text, "answer": answer,
            "solution": json.dumps({"task": task, **solution}, sort_keys=True), "split": split,
            "category": category, "qtype": qtype}


class Boxes:
    """The row's box convention for one image: text of boxes, the solution fields."""

    def __init__(self, p: dict, width: float | None, height: float | None):
        self.fmt = p["boxes"]
        self.size = [int(width), int(height)] if width and height else None
        self.resized = None
        if self.fmt == "qwen":
            if self.size is None:
                raise SpecError("eo_tasks: boxes: qwen needs the image size of every box row")
            rh, rw = smart_resize(self.size[1], self.size[0], min_pixels=p["min_pixels"], max_pixels=p["max_pixels"])
            self.resized = [int(rw), int(rh)]

    def answer(self, boxes: np.ndarray, label: str) -> tuple[str, list[list[float]]]:
        """(answer text, solution boxes on the grid) of canonical grid ``boxes``."""
        if self.fmt == "qwen":
            px = boxes_to_qwen(boxes, self.size, self.resized)
            return format_qwen(px, label), qwen_to_boxes(px, self.resized).tolist()
        return format_boxes(boxes), np.asarray(boxes, dtype=float).reshape(-1, 5).tolist()

    def region(self, box: np.ndarray) -> str:
        """A box quoted in a prompt."""
        if self.fmt == "qwen":
            return json.dumps([int(v) for v in boxes_to_qwen([box], self.size, self.resized)[0]])
        return format_box(box)

    def solution(self, boxes: list[list[float]]) -> dict:
        sol: dict = {"boxes": boxes, "box_format": self.fmt}
        if self.size:
            sol["size"] = self.size
        if self.resized:
            sol["resized"] = self.resized
        return sol
