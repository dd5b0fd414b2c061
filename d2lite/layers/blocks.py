"""``CNNBlockBase`` (the common base of ResNet stems and blocks) and depthwise-separable convs.

N: images, Cin/Cout: input/output channels, H, W: spatial size.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .batch_norm import FrozenBatchNorm2d, get_norm
from .weight_init import c2_msra_fill
from .wrappers import Conv2d

__all__ = ["CNNBlockBase", "DepthwiseSeparableConv2d"]


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


_Norm = str | Callable[[int], nn.Module] | None
_Activation = Callable[[Tensor], Tensor] | None


class DepthwiseSeparableConv2d(nn.Module):
    """A k x k depthwise conv (one filter per channel) followed by a 1 x 1 pointwise conv.

    Xception normalizes and activates only after the pointwise conv, MobileNet after both;
    each conv takes its own optional norm and activation. A conv with a norm has no bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        dilation: int = 1,
        *,
        norm1: _Norm = None,
        activation1: _Activation = None,
        norm2: _Norm = None,
        activation2: _Activation = None,
    ) -> None:
        """
        Args:
            in_channels (int): Cin.
            out_channels (int): Cout.
            kernel_size, padding, dilation (int): of the depthwise conv. Default to 3, 1, 1.
            norm1, norm2 (str | Callable | None): norms of the two convs (see ``get_norm``).
                Default to None.
            activation1, activation2 (Callable | None): activations of the two convs.
                Default to None.
        """
        super().__init__()
        self.depthwise = Conv2d(
            in_channels,
            in_channels,
            kernel_size=kernel_size,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=not norm1,
            norm=get_norm(norm1, in_channels),
            activation=activation1,
        )
        self.pointwise = Conv2d(
            in_channels,
            out_channels,
            kernel_size=1,
            bias=not norm2,
            norm=get_norm(norm2, out_channels),
            activation=activation2,
        )
        c2_msra_fill(self.depthwise)
        c2_msra_fill(self.pointwise)

    def forward(self, x: Tensor) -> Tensor:
        """Maps ``x (Tensor[N, Cin, H, W])`` to ``Tensor[N, Cout, H', W']``."""
        return self.pointwise(self.depthwise(x))
