"""Detectron2 ROI heads d2lite leaves out: masks, keypoints, Cascade R-CNN.

Their registries (in ``modeling.registry``) are empty, so user code can still register into
them; the builders and the classes raise ``NotImplementedError``. ``CascadeROIHeads`` is
registered so that a config naming it gets that error rather than an unknown name.
"""
from __future__ import annotations

from torch import nn

from ...utils.unsupported import unsupported_class, unsupported_function
from ..registry import ROI_HEADS_REGISTRY, ROI_KEYPOINT_HEAD_REGISTRY, ROI_MASK_HEAD_REGISTRY
from .roi_heads import StandardROIHeads

__all__ = [
    "BaseKeypointRCNNHead",
    "BaseMaskRCNNHead",
    "CascadeROIHeads",
    "KRCNNConvDeconvUpsampleHead",
    "MaskRCNNConvUpsampleHead",
    "ROI_KEYPOINT_HEAD_REGISTRY",
    "ROI_MASK_HEAD_REGISTRY",
    "build_keypoint_head",
    "build_mask_head",
]

_MASKS, _KEYPOINTS = "mask heads", "keypoint heads"

build_mask_head = unsupported_function("build_mask_head", _MASKS, __name__)
BaseMaskRCNNHead = unsupported_class("BaseMaskRCNNHead", _MASKS, __name__, bases=(nn.Module,))
MaskRCNNConvUpsampleHead = unsupported_class(
    "MaskRCNNConvUpsampleHead", _MASKS, __name__, bases=(BaseMaskRCNNHead,)
)

build_keypoint_head = unsupported_function("build_keypoint_head", _KEYPOINTS, __name__)
BaseKeypointRCNNHead = unsupported_class(
    "BaseKeypointRCNNHead", _KEYPOINTS, __name__, bases=(nn.Module,)
)
KRCNNConvDeconvUpsampleHead = unsupported_class(
    "KRCNNConvDeconvUpsampleHead", _KEYPOINTS, __name__, bases=(BaseKeypointRCNNHead,)
)

CascadeROIHeads = unsupported_class(
    "CascadeROIHeads", "Cascade R-CNN", __name__, bases=(StandardROIHeads,)
)
ROI_HEADS_REGISTRY.register(CascadeROIHeads)
