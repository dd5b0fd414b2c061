"""TinyBackbone: a few plain convs, small enough to train from scratch on a CPU in tests.

N: images, C: ``out_channels``, H, W: padded input size (multiples of 8).
"""
from __future__ import annotations

from torch import Tensor, nn

from ...config import CfgNode, configurable
from ...layers import ShapeSpec
from ...layers.weight_init import c2_msra_fill
from ..registry import BACKBONE_REGISTRY
from .backbone import Backbone

__all__ = ["TinyBackbone"]


def _conv_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
    c2_msra_fill(conv)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


@BACKBONE_REGISTRY.register()
class TinyBackbone(Backbone):
    """Two conv stages. Outputs {"p2": (N, C, H/4, W/4), "p3": (N, C, H/8, W/8)}.

    No normalisation layers: batches of one or two images make batch statistics useless, and
    the inputs are already standardised by ``MODEL.PIXEL_MEAN``/``PIXEL_STD``.
    """

    @configurable  # TinyBackbone(cfg, input_shape) and TinyBackbone(in_channels=3) both work
    def __init__(self, *, in_channels: int, out_channels: int = 32) -> None:
        """
        Args:
            in_channels (int): image channels.
            out_channels (int): C, channels of both outputs. Defaults to 32.
        """
        super().__init__()
        half = max(out_channels // 2, 1)
        self.stage1 = nn.Sequential(
            _conv_relu(in_channels, half, stride=2),
            _conv_relu(half, out_channels, stride=2),
            _conv_relu(out_channels, out_channels, stride=1),
        )
        self.stage2 = nn.Sequential(
            _conv_relu(out_channels, out_channels, stride=2),
            _conv_relu(out_channels, out_channels, stride=1),
        )
        self._out_features = ["p2", "p3"]
        self._out_feature_channels = {"p2": out_channels, "p3": out_channels}
        self._out_feature_strides = {"p2": 4, "p3": 8}

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: ShapeSpec) -> dict:
        return {"in_channels": input_shape.channels, "out_channels": cfg.MODEL.TINY.OUT_CHANNELS}

    @property
    def size_divisibility(self) -> int:
        """Inputs are padded to a multiple of the coarsest stride, 8."""
        return 8

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Maps Tensor[N, in_channels, H, W] to {"p2": Tensor[N, C, H/4, W/4],
        "p3": Tensor[N, C, H/8, W/8]}."""
        p2 = self.stage1(x)
        return {"p2": p2, "p3": self.stage2(p2)}
