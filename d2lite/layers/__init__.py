"""Building blocks shared by backbones and heads (Detectron2's ``detectron2.layers``)."""
from .batch_norm import FrozenBatchNorm2d, get_norm
from .blocks import CNNBlockBase
from .denormals import flush_denormals
from .nms import batched_nms, nms
from .roi_align import ROIAlign
from .shape_spec import ShapeSpec
from .wrappers import Conv2d, cat, cross_entropy, move_device_like, nonzero_tuple, shapes_to_tensor

__all__ = [
    "CNNBlockBase",
    "Conv2d",
    "FrozenBatchNorm2d",
    "ROIAlign",
    "ShapeSpec",
    "batched_nms",
    "cat",
    "cross_entropy",
    "flush_denormals",
    "get_norm",
    "move_device_like",
    "nms",
    "nonzero_tuple",
    "shapes_to_tensor",
]
