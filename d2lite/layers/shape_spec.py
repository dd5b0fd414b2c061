"""``ShapeSpec``: what a module tells the next one about its output."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ShapeSpec"]


@dataclass(frozen=True)
class ShapeSpec:
    """Channels, size and stride of a feature map; any field may be unknown (None)."""

    channels: int | None = None
    height: int | None = None
    width: int | None = None
    stride: int | None = None
