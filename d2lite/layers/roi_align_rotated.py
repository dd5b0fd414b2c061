"""ROIAlign over rotated boxes: d2lite has axis-aligned boxes only."""
from __future__ import annotations

from torch import nn

from ..utils.unsupported import unsupported_class, unsupported_function

__all__ = ["ROIAlignRotated", "roi_align_rotated"]

_WHAT = "rotated boxes"

ROIAlignRotated = unsupported_class("ROIAlignRotated", _WHAT, __name__, bases=(nn.Module,))
roi_align_rotated = unsupported_function("roi_align_rotated", _WHAT, __name__)
