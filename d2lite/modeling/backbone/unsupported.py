"""Detectron2 backbones d2lite leaves out (transformers, RegNet, mmdetection's, RetinaNet's
FPN with p6/p7): importable for Detectron2 scripts, and building one raises
``NotImplementedError``. The RetinaNet builder is registered, so a config naming it gets that
error rather than an unknown name; ``backbone.fpn`` re-exports it and ``LastLevelP6P7`` at
Detectron2's path."""
from __future__ import annotations

from torch import Tensor, nn

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


class _LeftOutBackbone(Backbone):
    """A concrete Backbone base: building a left-out backbone must reach its
    NotImplementedError, not the TypeError of an abstract class."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Never reached: the subclasses cannot be built."""
        raise NotImplementedError(type(self).__name__)


ViT = unsupported_class("ViT", _TRANSFORMERS, __name__, bases=(_LeftOutBackbone,))
MViT = unsupported_class("MViT", _TRANSFORMERS, __name__, bases=(_LeftOutBackbone,))
SwinTransformer = unsupported_class(
    "SwinTransformer", _TRANSFORMERS, __name__, bases=(_LeftOutBackbone,)
)
SimpleFeaturePyramid = unsupported_class(
    "SimpleFeaturePyramid", _TRANSFORMERS, __name__, bases=(_LeftOutBackbone,)
)
get_vit_lr_decay_rate = unsupported_function("get_vit_lr_decay_rate", _TRANSFORMERS, __name__)
RegNet = unsupported_class("RegNet", "RegNet backbones", __name__, bases=(_LeftOutBackbone,))
MMDetBackbone = unsupported_class(
    "MMDetBackbone", "mmdetection backbones", __name__, bases=(_LeftOutBackbone,)
)

_RETINANET = "RetinaNet's FPN with p6/p7 (one-stage dense detectors)"
LastLevelP6P7 = unsupported_class("LastLevelP6P7", _RETINANET, __name__, bases=(nn.Module,))
build_retinanet_resnet_fpn_backbone = unsupported_function(
    "build_retinanet_resnet_fpn_backbone", _RETINANET, __name__
)
BACKBONE_REGISTRY.register(build_retinanet_resnet_fpn_backbone)
