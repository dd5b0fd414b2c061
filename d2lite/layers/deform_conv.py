"""Deformable convolutions (DCN v1/v2): they need compiled kernels, which d2lite does not ship."""
from __future__ import annotations

from torch import nn

from ..utils.unsupported import unsupported_class

__all__ = ["DeformConv", "ModulatedDeformConv"]

_WHAT = "deformable convolution"

DeformConv = unsupported_class("DeformConv", _WHAT, __name__, bases=(nn.Module,))
ModulatedDeformConv = unsupported_class("ModulatedDeformConv", _WHAT, __name__, bases=(nn.Module,))
