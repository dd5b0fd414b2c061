"""Building blocks shared by backbones and heads (Detectron2's ``detectron2.layers``).

ASPP, deformable convs, rotated-box ops and mask pasting import (for Detectron2 scripts) and
raise NotImplementedError when used.
"""
from .aspp import ASPP
from .batch_norm import CycleBatchNormList, FrozenBatchNorm2d, NaiveSyncBatchNorm, get_norm
from .blocks import CNNBlockBase, DepthwiseSeparableConv2d
from .deform_conv import DeformConv, ModulatedDeformConv
from .denormals import flush_denormals
from .losses import ciou_loss, diou_loss
from .mask_ops import paste_masks_in_image
from .nms import batched_nms, batched_nms_rotated, nms, nms_rotated
from .roi_align import ROIAlign, roi_align
from .roi_align_rotated import ROIAlignRotated, roi_align_rotated
from .shape_spec import ShapeSpec
from .wrappers import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Linear,
    cat,
    cross_entropy,
    empty_input_loss_func_wrapper,
    interpolate,
    move_device_like,
    nonzero_tuple,
    shapes_to_tensor,
)

__all__ = [
    "ASPP",
    "CycleBatchNormList",
    "FrozenBatchNorm2d",
    "NaiveSyncBatchNorm",
    "get_norm",
    "CNNBlockBase",
    "DepthwiseSeparableConv2d",
    "DeformConv",
    "ModulatedDeformConv",
    "flush_denormals",
    "ciou_loss",
    "diou_loss",
    "paste_masks_in_image",
    "nms",
    "batched_nms",
    "batched_nms_rotated",
    "nms_rotated",
    "roi_align",
    "ROIAlign",
    "roi_align_rotated",
    "ROIAlignRotated",
    "ShapeSpec",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Linear",
    "cat",
    "cross_entropy",
    "empty_input_loss_func_wrapper",
    "interpolate",
    "move_device_like",
    "nonzero_tuple",
    "shapes_to_tensor",
]
