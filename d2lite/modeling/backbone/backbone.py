"""The ``Backbone`` interface.

N: images in the batch, C: channels, H, W: padded input size, Hi, Wi: size of the i-th output.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from torch import Tensor, nn

from ...layers.shape_spec import ShapeSpec

__all__ = ["Backbone"]

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

