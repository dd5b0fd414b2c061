"""Pasting predicted masks into the image: d2lite predicts boxes only."""
from __future__ import annotations

from ..utils.unsupported import unsupported_function

__all__ = ["paste_masks_in_image"]

paste_masks_in_image = unsupported_function(
    "paste_masks_in_image", "instance segmentation masks", __name__
)
