"""Building blocks shared by backbones and heads (Detectron2's ``detectron2.layers``).

ASPP, deformable convs, rotated-box ops and mask pasting import (for Detectron2 scripts) and
raise NotImplementedError when used.
"""
from types import ModuleType as _ModuleType

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

# The public names are everything imported above, less the submodules themselves.
__all__ = [
    n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _ModuleType)
]
