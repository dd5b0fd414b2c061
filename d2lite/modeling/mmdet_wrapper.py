"""Detectron2's wrappers of mmdetection models: importable, not implemented."""
from __future__ import annotations

from torch import nn

from ..utils.unsupported import unsupported_class
from .backbone.unsupported import MMDetBackbone

__all__ = ["MMDetBackbone", "MMDetDetector"]

MMDetDetector = unsupported_class(
    "MMDetDetector", "mmdetection detectors", __name__, bases=(nn.Module,)
)
