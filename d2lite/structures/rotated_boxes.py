"""Rotated boxes: importable for Detectron2 scripts, not implemented (d2lite's boxes are
axis-aligned; ``BoxMode.XYWHA_ABS`` still converts to and from them)."""
from __future__ import annotations

from ..utils.unsupported import unsupported_class, unsupported_function
from .boxes import Boxes

__all__ = ["RotatedBoxes", "pairwise_iou"]

# A subclass of Boxes, as in Detectron2, so that isinstance checks give the same answer.
RotatedBoxes = unsupported_class("RotatedBoxes", "rotated boxes", __name__, bases=(Boxes,))
# Named as d2lite.structures exports it, so the error names what the script called.
pairwise_iou = unsupported_function("pairwise_iou_rotated", "IoU of rotated boxes", __name__)
