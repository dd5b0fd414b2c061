"""Rotated-box ROI heads: importable for Detectron2 scripts, not implemented."""
from __future__ import annotations

from ...utils.unsupported import unsupported_class
from ..registry import ROI_HEADS_REGISTRY
from .fast_rcnn import FastRCNNOutputLayers
from .roi_heads import StandardROIHeads

__all__ = ["RROIHeads", "RotatedFastRCNNOutputLayers"]

# Subclasses as in Detectron2, so that isinstance checks give the same answer.
RotatedFastRCNNOutputLayers = unsupported_class(
    "RotatedFastRCNNOutputLayers", "rotated boxes", __name__, bases=(FastRCNNOutputLayers,)
)
RROIHeads = unsupported_class("RROIHeads", "rotated boxes", __name__, bases=(StandardROIHeads,))
ROI_HEADS_REGISTRY.register(RROIHeads)
