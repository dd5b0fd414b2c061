"""ROI heads, box heads and the Fast R-CNN box predictor (mask, keypoint, cascade and rotated
heads import but are not implemented)."""
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
from .rotated_fast_rcnn import RROIHeads
from .unsupported import (
    ROI_KEYPOINT_HEAD_REGISTRY,
    ROI_MASK_HEAD_REGISTRY,
    BaseKeypointRCNNHead,
    BaseMaskRCNNHead,
    CascadeROIHeads,
    KRCNNConvDeconvUpsampleHead,
    MaskRCNNConvUpsampleHead,
    build_keypoint_head,
    build_mask_head,
)

__all__ = [
    "ROI_BOX_HEAD_REGISTRY",
    "FastRCNNConvFCHead",
    "build_box_head",
    "FastRCNNOutputLayers",
    "fast_rcnn_inference",
    "ROI_HEADS_REGISTRY",
    "Res5ROIHeads",
    "ROIHeads",
    "StandardROIHeads",
    "build_roi_heads",
    "select_foreground_proposals",
    "RROIHeads",
    "ROI_KEYPOINT_HEAD_REGISTRY",
    "ROI_MASK_HEAD_REGISTRY",
    "BaseKeypointRCNNHead",
    "BaseMaskRCNNHead",
    "CascadeROIHeads",
    "KRCNNConvDeconvUpsampleHead",
    "MaskRCNNConvUpsampleHead",
    "build_keypoint_head",
    "build_mask_head",
]
