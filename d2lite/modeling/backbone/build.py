"""``build_backbone`` and the registry it reads (Detectron2's ``modeling.backbone.build``)."""
from __future__ import annotations

from ...config import CfgNode
from ...layers.shape_spec import ShapeSpec
from ..registry import BACKBONE_REGISTRY, build_registered
from .backbone import Backbone

__all__ = ["BACKBONE_REGISTRY", "build_backbone"]


def build_backbone(cfg: CfgNode, input_shape: ShapeSpec | None = None) -> Backbone:
    """Builds ``cfg.MODEL.BACKBONE.NAME`` from the registry.

    Args:
        input_shape (ShapeSpec | None): the input images. Defaults to
            ``ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))``.
    """
    if input_shape is None:
        input_shape = ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))
    backbone = build_registered(BACKBONE_REGISTRY, cfg.MODEL.BACKBONE.NAME, cfg, input_shape)
    assert isinstance(
        backbone, Backbone
    ), f"{cfg.MODEL.BACKBONE.NAME} returned {type(backbone)}, not a Backbone"
    return backbone
