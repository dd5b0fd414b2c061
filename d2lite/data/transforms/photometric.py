"""Photometric augmentations: brightness, contrast, saturation and PCA lighting jitter.

Each returns a ``BlendTransform`` (``src_weight * src_image + dst_weight * image``), which moves
no coordinates, so boxes pass through unchanged.
"""

from __future__ import annotations

import numpy as np

from .augmentation import Augmentation, AugmentationValueError
from .transform import BlendTransform, Transform

__all__ = ["RandomBrightness", "RandomContrast", "RandomSaturation", "RandomLighting"]


def _check_rgb(image: np.ndarray, name: str) -> None:
    if image.ndim != 3 or image.shape[-1] != 3:
        raise AugmentationValueError(f"{name} needs an RGB HWC image, got shape {image.shape}")


class _RandomIntensity(Augmentation):
    """A blend whose weight is drawn uniformly from [intensity_min, intensity_max]."""

    def __init__(self, intensity_min: float, intensity_max: float) -> None:
        """
        Args:
            intensity_min (float): smallest factor.
            intensity_max (float): largest factor.
        """
        super().__init__()
        self._init(locals())

    def _blend(self, src_image: float | np.ndarray) -> Transform:
        """``w * image + (1 - w) * src_image`` for a random weight ``w``."""
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return BlendTransform(src_image=src_image, src_weight=1 - w, dst_weight=w)


class RandomBrightness(_RandomIntensity):
    """Multiply the image by a factor drawn uniformly from [intensity_min, intensity_max].

    Below 1 darkens, 1 keeps the image, above 1 brightens.
    """

    def get_transform(self, image: np.ndarray) -> Transform:
        return self._blend(0)


class RandomContrast(_RandomIntensity):
    """Scale each pixel's distance from the image mean by a random factor.

    Below 1 flattens the contrast, 1 keeps the image, above 1 strengthens it.
    """

    def get_transform(self, image: np.ndarray) -> Transform:
        return self._blend(image.mean())


class RandomSaturation(_RandomIntensity):
    """Move an RGB image towards (factor < 1) or away from (> 1) its grayscale version."""

    def get_transform(self, image: np.ndarray) -> Transform:
        _check_rgb(image, "RandomSaturation")
        return self._blend(image.dot([0.299, 0.587, 0.114])[:, :, np.newaxis])


class RandomLighting(Augmentation):
    """AlexNet-style PCA lighting noise along the ImageNet RGB eigenvectors."""

    def __init__(self, scale: float) -> None:
        """
        Args:
            scale (float): standard deviation of the per-eigenvector weights.
        """
        super().__init__()
        self._init(locals())
        self.eigen_vecs = np.array(
            [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
        )
        self.eigen_vals = np.array([0.2175, 0.0188, 0.0045])

    def get_transform(self, image: np.ndarray) -> Transform:
        _check_rgb(image, "RandomLighting")
        weights = np.random.normal(scale=self.scale, size=3)
        return BlendTransform(
            src_image=self.eigen_vecs.dot(weights * self.eigen_vals), src_weight=1.0, dst_weight=1.0
        )
