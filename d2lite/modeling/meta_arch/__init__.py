"""Whole models (meta-architectures), their registry and ``build_model``.

Detectron2's dense detectors and segmentation models import but are not implemented.
"""
from types import ModuleType as _ModuleType

from .build import META_ARCH_REGISTRY, build_model, resolve_device
from .rcnn import GeneralizedRCNN, ProposalNetwork
from .unsupported import (
    FCOS,
    SEM_SEG_HEADS_REGISTRY,
    DenseDetector,
    PanopticFPN,
    RetinaNet,
    SemanticSegmentor,
    build_sem_seg_head,
)

# The public names are everything imported above, less the submodules themselves.
__all__ = [
    n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _ModuleType)
]
