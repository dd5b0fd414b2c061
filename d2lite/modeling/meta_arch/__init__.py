"""Whole models (meta-architectures), their registry and ``build_model``.

Detectron2's dense detectors and segmentation models import but are not implemented.
"""
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

__all__ = [
    "META_ARCH_REGISTRY",
    "build_model",
    "resolve_device",
    "GeneralizedRCNN",
    "ProposalNetwork",
    "FCOS",
    "SEM_SEG_HEADS_REGISTRY",
    "DenseDetector",
    "PanopticFPN",
    "RetinaNet",
    "SemanticSegmentor",
    "build_sem_seg_head",
]
