"""Keypoints: importable for Detectron2 scripts, not implemented (d2lite detects boxes only)."""
from __future__ import annotations

from ..utils.unsupported import unsupported_class, unsupported_function

__all__ = ["Keypoints", "heatmaps_to_keypoints"]

Keypoints = unsupported_class("Keypoints", "keypoint detection", __name__)
heatmaps_to_keypoints = unsupported_function(
    "heatmaps_to_keypoints", "keypoint detection", __name__
)
