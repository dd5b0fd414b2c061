"""Every registry of model parts, and the one way a registered part is built.

A registered object is called as Detectron2 calls it: ``obj(cfg, input_shape)`` for a part of a
model, ``obj(cfg)`` for a whole model. The ``build_*`` functions stay beside what they build,
under Detectron2's module paths (``modeling.backbone.build``, ``modeling.roi_heads.roi_heads``,
...), which re-export the registry they read: the same object is reachable from here and there.
The registries of parts d2lite leaves out are empty, for user code that registers its own.
"""
from __future__ import annotations

from typing import Any

from fvcore.common.registry import Registry

from ..config import CfgNode

__all__ = [
    "ANCHOR_GENERATOR_REGISTRY",
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "PROPOSAL_GENERATOR_REGISTRY",
    "ROI_BOX_HEAD_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "ROI_KEYPOINT_HEAD_REGISTRY",
    "ROI_MASK_HEAD_REGISTRY",
    "RPN_HEAD_REGISTRY",
    "SEM_SEG_HEADS_REGISTRY",
    "build_registered",
]


def _registry(name: str, doc: str) -> Registry:
    registry = Registry(name)
    registry.__doc__ = doc
    return registry


# Each docstring says what ``input_shape`` a registered object receives.
META_ARCH_REGISTRY = _registry("META_ARCH", "Whole models, called as ``obj(cfg)``.")
BACKBONE_REGISTRY = _registry("BACKBONE", "Backbones: ShapeSpec of the images; returns a Backbone.")
PROPOSAL_GENERATOR_REGISTRY = _registry(
    "PROPOSAL_GENERATOR", "Proposal generators: {name: ShapeSpec} of the backbone outputs."
)
RPN_HEAD_REGISTRY = _registry("RPN_HEAD", "RPN heads: list[ShapeSpec] of the RPN's inputs.")
ANCHOR_GENERATOR_REGISTRY = _registry(
    "ANCHOR_GENERATOR", "Anchor generators: list[ShapeSpec] of the features they cover."
)
ROI_HEADS_REGISTRY = _registry("ROI_HEADS", "ROI heads: {name: ShapeSpec} of the backbone outputs.")
ROI_BOX_HEAD_REGISTRY = _registry("ROI_BOX_HEAD", "Box heads: ShapeSpec of the pooled features.")
ROI_MASK_HEAD_REGISTRY = _registry("ROI_MASK_HEAD", "Mask heads (none in d2lite).")
ROI_KEYPOINT_HEAD_REGISTRY = _registry("ROI_KEYPOINT_HEAD", "Keypoint heads (none in d2lite).")
SEM_SEG_HEADS_REGISTRY = _registry("SEM_SEG_HEADS", "Semantic segmentation heads (none in d2lite).")


def build_registered(registry: Registry, name: str, cfg: CfgNode, *input_shape: Any) -> Any:
    """Returns ``registry.get(name)(cfg, *input_shape)``; no shape for a meta-architecture.

    Raises:
        KeyError: fvcore's "No object named ... found in ... registry!" for an unknown name.
    """
    return registry.get(name)(cfg, *input_shape)
