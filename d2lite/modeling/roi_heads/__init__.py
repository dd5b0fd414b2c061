"""ROI heads, box heads and the Fast R-CNN box predictor."""
from .box_head import ROI_BOX_HEAD_REGISTRY, FastRCNNConvFCHead, build_box_head
from .fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from .roi_heads import (
    ROI_HEADS_REGISTRY,
    Res5ROIHeads,
    ROIHeads,
    StandardROIHeads,
    build_roi_heads,
    select_foreground_proposals,
)

__all__ = [
    "FastRCNNConvFCHead",
    "FastRCNNOutputLayers",
    "ROIHeads",
    "Res5ROIHeads",
    "ROI_BOX_HEAD_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "StandardROIHeads",
    "build_box_head",
    "build_roi_heads",
    "fast_rcnn_inference",
    "select_foreground_proposals",
]
