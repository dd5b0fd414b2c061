"""``CNNBlockBase``: the common base of ResNet stems and blocks."""
from __future__ import annotations

from torch import nn

from .batch_norm import FrozenBatchNorm2d

__all__ = ["CNNBlockBase"]


class CNNBlockBase(nn.Module):
    """A block with known input/output channels and stride, that can be frozen.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): how much the block downsamples its input.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def freeze(self) -> "CNNBlockBase":
        """Stops gradients to all parameters and turns batch norms into ``FrozenBatchNorm2d``.

        Returns:
            CNNBlockBase: the block itself, changed in place.
        """
        for p in self.parameters():
            p.requires_grad = False
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        return self
