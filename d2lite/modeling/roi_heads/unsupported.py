"""Detectron2 ROI heads d2lite leaves out: masks, keypoints, Cascade R-CNN.

Their registries exist (empty, so user code can still register into them); the builders and
the classes raise ``NotImplementedError``. ``CascadeROIHeads`` is registered so that a config
naming it gets that error rather than an unknown name.
"""
from __future__ import annotations

from fvcore.common.registry import Registry
from torch import nn

from ...utils.unsupported import unsupported_class, unsupported_function
from .roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads

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

ROI_MASK_HEAD_REGISTRY = Registry("ROI_MASK_HEAD")
ROI_MASK_HEAD_REGISTRY.__doc__ = "Registry for mask heads (none in d2lite)."
build_mask_head = unsupported_function("build_mask_head", _MASKS, __name__)
BaseMaskRCNNHead = unsupported_class("BaseMaskRCNNHead", _MASKS, __name__, bases=(nn.Module,))
MaskRCNNConvUpsampleHead = unsupported_class(
    "MaskRCNNConvUpsampleHead", _MASKS, __name__, bases=(BaseMaskRCNNHead,)
)

ROI_KEYPOINT_HEAD_REGISTRY = Registry("ROI_KEYPOINT_HEAD")
ROI_KEYPOINT_HEAD_REGISTRY.__doc__ = "Registry for keypoint heads (none in d2lite)."
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
