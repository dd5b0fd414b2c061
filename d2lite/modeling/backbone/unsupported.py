"""Detectron2 backbones d2lite leaves out (transformers, RegNet, mmdetection's, RetinaNet's
FPN with p6/p7): importable for Detectron2 scripts, and building one raises
``NotImplementedError``. The RetinaNet builder is registered, so a config naming it gets that
error rather than an unknown name; ``backbone.fpn`` re-exports it and ``LastLevelP6P7`` at
Detectron2's path."""
from __future__ import annotations

from torch import nn

from ...utils.unsupported import unsupported_class, unsupported_function
from ..registry import BACKBONE_REGISTRY
from .backbone import Backbone

__all__ = [
    "LastLevelP6P7",
    "MMDetBackbone",
    "MViT",
    "RegNet",
    "SimpleFeaturePyramid",
    "SwinTransformer",
    "ViT",
    "build_retinanet_resnet_fpn_backbone",
    "get_vit_lr_decay_rate",
]

_TRANSFORMERS = "vision-transformer backbones"

# Backbone is abstract, but unsupported_class clears the abstract methods, so building one
# of these reaches its NotImplementedError rather than an abstract-class TypeError.
ViT = unsupported_class("ViT", _TRANSFORMERS, __name__, bases=(Backbone,))
MViT = unsupported_class("MViT", _TRANSFORMERS, __name__, bases=(Backbone,))
SwinTransformer = unsupported_class("SwinTransformer", _TRANSFORMERS, __name__, bases=(Backbone,))
SimpleFeaturePyramid = unsupported_class(
    "SimpleFeaturePyramid", _TRANSFORMERS, __name__, bases=(Backbone,)
)
get_vit_lr_decay_rate = unsupported_function("get_vit_lr_decay_rate", _TRANSFORMERS, __name__)
RegNet = unsupported_class("RegNet", "RegNet backbones", __name__, bases=(Backbone,))
MMDetBackbone = unsupported_class(
    "MMDetBackbone", "mmdetection backbones", __name__, bases=(Backbone,)
)

_RETINANET = "RetinaNet's FPN with p6/p7 (one-stage dense detectors)"
LastLevelP6P7 = unsupported_class("LastLevelP6P7", _RETINANET, __name__, bases=(nn.Module,))
build_retinanet_resnet_fpn_backbone = unsupported_function(
    "build_retinanet_resnet_fpn_backbone", _RETINANET, __name__
)
BACKBONE_REGISTRY.register(build_retinanet_resnet_fpn_backbone)
