"""Detectron2 meta-architectures d2lite leaves out: dense detectors (RetinaNet, FCOS) and
segmentation models. They import, are registered (so ``MODEL.META_ARCHITECTURE`` names them),
and building one raises ``NotImplementedError``."""
from __future__ import annotations

from torch import nn

from ...utils.unsupported import unsupported_class, unsupported_function
from ..registry import META_ARCH_REGISTRY, SEM_SEG_HEADS_REGISTRY

__all__ = [
    "DenseDetector",
    "FCOS",
    "PanopticFPN",
    "RetinaNet",
    "SEM_SEG_HEADS_REGISTRY",
    "SemanticSegmentor",
    "build_sem_seg_head",
]

_DENSE = "one-stage dense detectors"
_SEGMENTATION = "semantic and panoptic segmentation"

DenseDetector = unsupported_class("DenseDetector", _DENSE, __name__, bases=(nn.Module,))
RetinaNet = unsupported_class("RetinaNet", _DENSE, __name__, bases=(DenseDetector,))
FCOS = unsupported_class("FCOS", _DENSE, __name__, bases=(DenseDetector,))
SemanticSegmentor = unsupported_class(
    "SemanticSegmentor", _SEGMENTATION, __name__, bases=(nn.Module,)
)
PanopticFPN = unsupported_class("PanopticFPN", _SEGMENTATION, __name__, bases=(nn.Module,))
for _meta_arch in (RetinaNet, FCOS, SemanticSegmentor, PanopticFPN):
    META_ARCH_REGISTRY.register(_meta_arch)

build_sem_seg_head = unsupported_function("build_sem_seg_head", _SEGMENTATION, __name__)
