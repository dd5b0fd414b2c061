"""Crop augmentations."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .augmentation import Augmentation, AugmentationValueError
from .transform import CropTransform, Transform

__all__ = ["RandomCrop"]

class RandomCrop(Augmentation):
    """Crop a random region whose size is given by ``crop_type`` and ``crop_size``."""

    def __init__(self, crop_type: str, crop_size: Sequence[float]) -> None:
        """
        Args:
            crop_type (str): "relative" (crop (H*h, W*w)), "relative_range" (uniform in
                [h, 1] x [w, 1] of the size), "absolute" (crop (h, w) pixels, at most the image)
                or "absolute_range" (h and w uniform in [min, max] pixels).
            crop_size (Sequence[float]): (h, w) or, for "absolute_range", (min, max).
        """
        super().__init__()
        kinds = ("relative_range", "relative", "absolute", "absolute_range")
        if crop_type not in kinds:
            raise AugmentationValueError(
                f"Unknown crop type {crop_type!r}; expected one of {kinds}"
            )
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        croph, cropw = self.get_crop_size((h, w))
        assert h >= croph and w >= cropw, f"Shape computation in {self} has bugs."
        h0 = np.random.randint(h - croph + 1)
        w0 = np.random.randint(w - cropw + 1)
        return CropTransform(w0, h0, cropw, croph)

    def get_crop_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Return the (h, w) of the crop for an image of ``image_size`` (h, w)."""
        h, w = image_size
        if self.crop_type == "relative":
            ch, cw = self.crop_size
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "relative_range":
            crop_size = np.asarray(self.crop_size, dtype=np.float32)
            ch, cw = crop_size + np.random.rand(2) * (1 - crop_size)
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "absolute":
            return min(self.crop_size[0], h), min(self.crop_size[1], w)
        lo, hi = self.crop_size
        if lo > hi:
            raise AugmentationValueError(
                f"absolute_range crop_size must be (min, max), got {self.crop_size}"
            )
        ch = np.random.randint(min(h, lo), min(h, hi) + 1)
        cw = np.random.randint(min(w, lo), min(w, hi) + 1)
        return ch, cw
