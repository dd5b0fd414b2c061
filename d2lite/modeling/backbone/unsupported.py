"""Detectron2 backbones d2lite leaves out (transformers, RegNet, mmdetection's): importable for
Detectron2 scripts, and building one raises ``NotImplementedError``."""
from __future__ import annotations

from torch import Tensor

from ...utils.unsupported import unsupported_class, unsupported_function
from .backbone import Backbone

__all__ = [
    "MMDetBackbone",
    "MViT",
    "RegNet",
    "SimpleFeaturePyramid",
    "SwinTransformer",
    "ViT",
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
