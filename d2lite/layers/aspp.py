"""``ASPP`` (DeepLab's atrous spatial pyramid pooling): semantic segmentation, not in d2lite."""
from __future__ import annotations

from torch import nn

from ..utils.unsupported import unsupported_class

__all__ = ["ASPP"]

ASPP = unsupported_class("ASPP", "semantic segmentation (DeepLab)", __name__, bases=(nn.Module,))
