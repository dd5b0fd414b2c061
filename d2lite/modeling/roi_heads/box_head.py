"""Box heads: turn each pooled ROI feature into a feature vector for the box predictor.

M: ROIs in the batch, C: channels, S: pooler output size.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from ...config import CfgNode, configurable
from ...layers import Conv2d, ShapeSpec, get_norm
from ...layers.weight_init import c2_msra_fill, c2_xavier_fill
from ..registry import ROI_BOX_HEAD_REGISTRY, build_registered

__all__ = ["ROI_BOX_HEAD_REGISTRY", "FastRCNNConvFCHead", "build_box_head"]

@ROI_BOX_HEAD_REGISTRY.register()
class FastRCNNConvFCHead(nn.Sequential):
    """``conv1..convK`` (3x3, optional norm, ReLU), then flatten and ``fc1..fcJ`` (+ ReLU).

    As an ``nn.Sequential`` it maps Tensor[M, C, S, S] to Tensor[M, FC_DIM] (or to the conv
    output when there is no fc layer) by running these layers in order.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        conv_dims: list[int],
        fc_dims: list[int],
        conv_norm: str = "",
    ) -> None:
        """
        Args:
            input_shape (ShapeSpec): channels, height and width of the pooled features.
            conv_dims (list[int]): output channels of each conv layer (may be empty).
            fc_dims (list[int]): output size of each fully-connected layer (may be empty).
            conv_norm (str): norm of the conv layers (see ``get_norm``); "" for none.
                Defaults to "".
        """
        super().__init__()
        if len(conv_dims) + len(fc_dims) == 0:
            raise ValueError("FastRCNNConvFCHead needs at least one conv or fc layer")
        self._output_size = (input_shape.channels, input_shape.height, input_shape.width)
        self.conv_norm_relus = []
        for k, conv_dim in enumerate(conv_dims):
            conv = Conv2d(
                self._output_size[0],
                conv_dim,
                kernel_size=3,
                padding=1,
                bias=not conv_norm,
                norm=get_norm(conv_norm, conv_dim),
                activation=nn.ReLU(),
            )
            self.add_module(f"conv{k + 1}", conv)
            self.conv_norm_relus.append(conv)
            self._output_size = (conv_dim, self._output_size[1], self._output_size[2])
        self.fcs = []
        for k, fc_dim in enumerate(fc_dims):
            if k == 0:
                self.add_module("flatten", nn.Flatten())
            fc = nn.Linear(int(np.prod(self._output_size)), fc_dim)
            self.add_module(f"fc{k + 1}", fc)
            self.add_module(f"fc_relu{k + 1}", nn.ReLU())
            self.fcs.append(fc)
            self._output_size = fc_dim
        for layer in self.conv_norm_relus:
            c2_msra_fill(layer)
        for layer in self.fcs:
            c2_xavier_fill(layer)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: ShapeSpec) -> dict:
        head = cfg.MODEL.ROI_BOX_HEAD
        return {
            "input_shape": input_shape,
            "conv_dims": [head.CONV_DIM] * head.NUM_CONV,
            "fc_dims": [head.FC_DIM] * head.NUM_FC,
            "conv_norm": head.NORM,
        }

    @property
    def output_shape(self) -> ShapeSpec:
        """The ShapeSpec of the output: channels only when the head ends with an fc layer."""
        size = self._output_size
        if isinstance(size, int):
            return ShapeSpec(channels=size)
        return ShapeSpec(channels=size[0], height=size[1], width=size[2])


def build_box_head(cfg: CfgNode, input_shape: ShapeSpec) -> nn.Module:
    """Builds ``cfg.MODEL.ROI_BOX_HEAD.NAME``."""
    return build_registered(ROI_BOX_HEAD_REGISTRY, cfg.MODEL.ROI_BOX_HEAD.NAME, cfg, input_shape)
