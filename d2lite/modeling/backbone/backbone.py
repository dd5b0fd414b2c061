"""The ``Backbone`` interface and its registry.

N: images in the batch, C: channels, H, W: padded input size, Hi, Wi: size of the i-th output.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from fvcore.common.registry import Registry
from torch import Tensor, nn

from ...layers.shape_spec import ShapeSpec

__all__ = ["Backbone", "BACKBONE_REGISTRY", "build_backbone"]

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Registry for backbones: a registered object is called as ``obj(cfg, input_shape)`` and returns
a :class:`Backbone` (a ``build_*`` function, or a class taking ``(cfg, input_shape)``).
"""


class Backbone(nn.Module, metaclass=ABCMeta):
    """Maps an image batch (N, C, H, W) to named feature maps {name: (N, Ci, Hi, Wi)}."""

    @abstractmethod
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Returns the named feature maps of the batch ``x``."""

    @property
    def size_divisibility(self) -> int:
        """Inputs are padded to a multiple of this (FPN needs its coarsest stride); 0 means none."""
        return 0

    @property
    def padding_constraints(self) -> dict[str, int]:
        """Extra padding rules, as in Detectron2 (``{"size_divisiblity": 32}`` or empty)."""
        return {}

    def output_shape(self) -> dict[str, ShapeSpec]:
        """Returns ``{name: ShapeSpec(channels, stride)}`` for every output feature."""
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }


def build_backbone(cfg, input_shape: ShapeSpec | None = None) -> Backbone:
    """Builds ``cfg.MODEL.BACKBONE.NAME`` from the registry.

    Args:
        input_shape (ShapeSpec | None): the input images. Defaults to
            ``ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))``.
    """
    if input_shape is None:
        input_shape = ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))
    backbone = BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg, input_shape)
    assert isinstance(
        backbone, Backbone
    ), f"{cfg.MODEL.BACKBONE.NAME} returned {type(backbone)}, not a Backbone"
    return backbone
