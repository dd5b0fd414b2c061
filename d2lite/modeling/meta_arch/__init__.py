"""Whole models (meta-architectures), their registry and ``build_model``."""
from .build import META_ARCH_REGISTRY, build_model, resolve_device
from .rcnn import GeneralizedRCNN, ProposalNetwork

__all__ = [
    "META_ARCH_REGISTRY",
    "GeneralizedRCNN",
    "ProposalNetwork",
    "build_model",
    "resolve_device",
]
