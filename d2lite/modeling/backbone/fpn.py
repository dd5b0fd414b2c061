"""Feature Pyramid Network on top of a bottom-up backbone (Lin et al., 2017).

N: images in the batch, C: FPN channels (``MODEL.FPN.OUT_CHANNELS``), H, W: padded input size.
Output ``p{k}`` has shape (N, C, H / 2**k, W / 2**k); with ResNet res2..res5 inputs and
:class:`LastLevelMaxPool` the outputs are p2..p6.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ...layers import Conv2d, ShapeSpec, get_norm
from ...layers.weight_init import c2_xavier_fill
from ..registry import BACKBONE_REGISTRY
from .backbone import Backbone
from .resnet import build_resnet_backbone

# RetinaNet's p6/p7 top block and builder, here for Detectron2's import path (not implemented).
from .unsupported import LastLevelP6P7, build_retinanet_resnet_fpn_backbone  # noqa: F401

__all__ = [
    "FPN",
    "LastLevelMaxPool",
    "build_resnet_fpn_backbone",
]


class LastLevelMaxPool(nn.Module):
    """Adds p6 = p5 subsampled by 2 (1x1 max pool, stride 2), for the RPN's largest anchors."""

    def __init__(self) -> None:
        super().__init__()
        self.num_levels = 1
        self.in_feature = "p5"

    def forward(self, x: Tensor) -> list[Tensor]:
        return [F.max_pool2d(x, kernel_size=1, stride=2, padding=0)]


class FPN(Backbone):
    """Top-down pathway with lateral connections over the outputs of ``bottom_up``.

    Module names follow Detectron2 (``fpn_lateral{k}``, ``fpn_output{k}`` with k = log2(stride),
    ``bottom_up``, ``top_block``) so its checkpoints load.

    Args:
        bottom_up (Backbone): produces the input features.
        in_features (list[str]): bottom-up features to use, finest first; their strides must
            double from one to the next (e.g. res2..res5).
        out_channels (int): channels C of every output.
        norm (str | Callable): norm of the FPN convs; convs get a bias only without one.
            Defaults to "".
        top_block (nn.Module | None): adds coarser levels from ``top_block.in_feature`` (a
            bottom-up feature or an FPN output). Defaults to None.
        fuse_type (str): "sum" or "avg" of the lateral and top-down features. Defaults to "sum".
        square_pad (int): if > 0, inputs are padded to this square size. Defaults to 0.
    """

    def __init__(
        self,
        bottom_up: Backbone,
        in_features: list[str],
        out_channels: int,
        *,
        norm="",
        top_block: nn.Module | None = None,
        fuse_type: str = "sum",
        square_pad: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(bottom_up, Backbone):
            raise TypeError(f"FPN bottom_up must be a Backbone, got {type(bottom_up)}")
        if not in_features:
            raise ValueError("FPN needs input features, but MODEL.FPN.IN_FEATURES is empty")
        if fuse_type not in ("sum", "avg"):
            raise ValueError(f"FPN fuse_type must be 'sum' or 'avg', got {fuse_type!r}")
        input_shapes = bottom_up.output_shape()
        missing = [f for f in in_features if f not in input_shapes]
        if missing:
            raise ValueError(f"FPN in_features {missing} are not outputs of {sorted(input_shapes)}")
        strides = [input_shapes[f].stride for f in in_features]
        if any(stride != 2 * prev for prev, stride in zip(strides, strides[1:])):
            raise ValueError(
                f"FPN in_features {list(in_features)} have strides {strides}; each must be twice "
                "the previous one"
            )
        self.bottom_up = bottom_up
        self.in_features = tuple(in_features)
        self.top_block = top_block
        self._fuse_type = fuse_type
        self._square_pad = square_pad
        self._size_divisibility = strides[-1]
        lateral_convs, output_convs = self._make_convs(input_shapes, strides, out_channels, norm)
        # Coarsest first: the order in which forward walks down the pyramid.
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]

        self._out_feature_strides = {f"p{int(math.log2(s))}": s for s in strides}
        if top_block is not None:
            last = int(math.log2(strides[-1]))
            for k in range(last + 1, last + 1 + top_block.num_levels):
                self._out_feature_strides[f"p{k}"] = 2**k
        self._out_features = list(self._out_feature_strides)
        self._out_feature_channels = {k: out_channels for k in self._out_features}

    def _make_convs(
        self, input_shapes: dict[str, ShapeSpec], strides: list[int], out_channels: int, norm
    ) -> tuple[list[Conv2d], list[Conv2d]]:
        lateral_convs, output_convs = [], []
        use_bias = norm == ""
        for feature, stride in zip(self.in_features, strides):
            lateral = Conv2d(
                input_shapes[feature].channels, out_channels, kernel_size=1, bias=use_bias,
                norm=get_norm(norm, out_channels),
            )
            output = Conv2d(
                out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=use_bias,
                norm=get_norm(norm, out_channels),
            )
            c2_xavier_fill(lateral)
            c2_xavier_fill(output)
            level = int(math.log2(stride))
            self.add_module(f"fpn_lateral{level}", lateral)
            self.add_module(f"fpn_output{level}", output)
            lateral_convs.append(lateral)
            output_convs.append(output)
        return lateral_convs, output_convs

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    @property
    def padding_constraints(self) -> dict[str, int]:
        return {"square_size": self._square_pad}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Maps images ``x (Tensor[N, C_in, H, W])`` to ``{"p2": Tensor[N, C, H/4, W/4], ...}``."""
        bottom_up_features = self.bottom_up(x)
        prev = self.lateral_convs[0](bottom_up_features[self.in_features[-1]])
        results = [self.output_convs[0](prev)]
        for feature, lateral_conv, output_conv in zip(
            self.in_features[-2::-1], self.lateral_convs[1:], self.output_convs[1:]
        ):
            lateral = lateral_conv(bottom_up_features[feature])
            # Upsampling to the lateral's size equals Detectron2's nearest x2 on inputs padded to
            # size_divisibility, and still works when the backbone is fed unpadded images.
            top_down = F.interpolate(prev, size=lateral.shape[-2:], mode="nearest")
            prev = lateral + top_down
            if self._fuse_type == "avg":
                prev = prev / 2
            results.insert(0, output_conv(prev))
        if self.top_block is not None:
            if self.top_block.in_feature in bottom_up_features:
                top_in = bottom_up_features[self.top_block.in_feature]
            else:
                top_in = results[self._out_features.index(self.top_block.in_feature)]
            results.extend(self.top_block(top_in))
        assert len(results) == len(self._out_features), f"{len(results)} != {self._out_features}"
        return dict(zip(self._out_features, results))


@BACKBONE_REGISTRY.register()
def build_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """ResNet (``MODEL.RESNETS``) + FPN (``MODEL.FPN``) + p6 by max pooling: Faster R-CNN's default.

    Args:
        cfg (CfgNode): the config.
        input_shape (ShapeSpec): ``channels`` is the number of image channels.
    """
    return FPN(
        build_resnet_backbone(cfg, input_shape),
        cfg.MODEL.FPN.IN_FEATURES,
        cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )

