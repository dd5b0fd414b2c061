"""The concrete augmentations: flips, resizes, crops, rotation and photometric jitter."""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np
from PIL import Image

from .augmentation import AugInput, Augmentation, _transform_to_aug
from .transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    ResizeTransform,
    RotationTransform,
    Transform,
    VFlipTransform,
)

__all__ = [
    "RandomApply",
    "RandomFlip",
    "Resize",
    "ResizeShortestEdge",
    "ResizeScale",
    "RandomCrop",
    "RandomRotation",
    "RandomBrightness",
    "RandomContrast",
    "RandomSaturation",
    "RandomLighting",
]


class RandomApply(Augmentation):
    """Apply a wrapped augmentation or transform with probability ``prob``."""

    def __init__(self, tfm_or_aug: Augmentation | Transform, prob: float = 0.5) -> None:
        """
        Args:
            tfm_or_aug (Augmentation | Transform): what to apply.
            prob (float): probability in [0, 1]. Defaults to 0.5.
        """
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomApply probability must be in [0, 1], got {prob}")
        self.aug = _transform_to_aug(tfm_or_aug)
        self.prob = prob
        self.input_args = self.aug.input_args

    def get_transform(self, *args: Any) -> Transform:
        if self._rand_range() < self.prob:
            return self.aug.get_transform(*args)
        return NoOpTransform()

    def __call__(self, aug_input: AugInput) -> Transform:
        if self._rand_range() < self.prob:
            return self.aug(aug_input)
        return NoOpTransform()


class RandomFlip(Augmentation):
    """Flip the image horizontally or vertically with probability ``prob``."""

    def __init__(
        self, prob: float = 0.5, *, horizontal: bool = True, vertical: bool = False
    ) -> None:
        """
        Args:
            prob (float): probability of flipping. Defaults to 0.5.
            horizontal (bool): flip left-right. Defaults to True.
            vertical (bool): flip top-bottom. Defaults to False.
        """
        super().__init__()
        if horizontal and vertical:
            raise ValueError("Cannot do both horiz and vert. Please use two Flip instead.")
        if not horizontal and not vertical:
            raise ValueError("At least one of horiz or vert has to be True!")
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if self._rand_range() < self.prob:
            return HFlipTransform(w) if self.horizontal else VFlipTransform(h)
        return NoOpTransform()


def _resize_output_shape(oldh: int, oldw: int, short_edge: float, max_size: float) -> tuple:
    """Return (new_h, new_w) with the short edge at ``short_edge`` and long edge <= ``max_size``."""
    scale = short_edge * 1.0 / min(oldh, oldw)
    if oldh < oldw:
        newh, neww = short_edge * 1.0, scale * oldw
    else:
        newh, neww = scale * oldh, short_edge * 1.0
    if max(newh, neww) > max_size:
        shrink = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * shrink, neww * shrink
    return int(newh + 0.5), int(neww + 0.5)


class Resize(Augmentation):
    """Resize to a fixed ``(h, w)``."""

    def __init__(self, shape: int | Sequence[int], interp: int = Image.BILINEAR) -> None:
        """
        Args:
            shape (int | Sequence[int]): (h, w), or one int for a square.
            interp (int): PIL resampling filter. Defaults to bilinear.
        """
        super().__init__()
        if isinstance(shape, int):
            shape = (shape, shape)
        shape = tuple(shape)
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        return ResizeTransform(h, w, self.shape[0], self.shape[1], self.interp)


class ResizeShortestEdge(Augmentation):
    """Resize so the short edge has a (random) length, capping the long edge at ``max_size``."""

    def __init__(
        self,
        short_edge_length: int | Sequence[int],
        max_size: int = sys.maxsize,
        sample_style: str = "range",
        interp: int = Image.BILINEAR,
    ) -> None:
        """
        Args:
            short_edge_length (int | Sequence[int]): with "range", (min, max) to sample from
                (inclusive); with "choice", the lengths to choose from. 0 means no resize.
            max_size (int): cap on the long edge. Defaults to sys.maxsize.
            sample_style (str): "range" or "choice". Defaults to "range".
            interp (int): PIL resampling filter. Defaults to bilinear.
        """
        super().__init__()
        if sample_style not in ("range", "choice"):
            raise ValueError(f"sample_style must be 'range' or 'choice', got {sample_style!r}")
        self.is_range = sample_style == "range"
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        if self.is_range and len(short_edge_length) != 2:
            raise ValueError(
                f"short_edge_length must be two values using 'range' sample style. "
                f"Got {short_edge_length}!"
            )
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if self.is_range:
            size = np.random.randint(self.short_edge_length[0], self.short_edge_length[1] + 1)
        else:
            size = np.random.choice(self.short_edge_length)
        if size == 0:
            return NoOpTransform()
        newh, neww = _resize_output_shape(h, w, size, self.max_size)
        return ResizeTransform(h, w, newh, neww, self.interp)

    @staticmethod
    def get_output_shape(oldh: int, oldw: int, short_edge_length: int, max_size: int) -> tuple:
        """Return the (h, w) an image of size (oldh, oldw) is resized to."""
        return _resize_output_shape(oldh, oldw, short_edge_length, max_size)


class ResizeScale(Augmentation):
    """Resize to fit ``(target_height, target_width)`` times a random scale, keeping the aspect."""

    def __init__(
        self,
        min_scale: float,
        max_scale: float,
        target_height: int,
        target_width: int,
        interp: int = Image.BILINEAR,
    ) -> None:
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        scale = np.random.uniform(self.min_scale, self.max_scale)
        input_size = image.shape[:2]
        target = np.multiply((self.target_height, self.target_width), scale)
        output_scale = min(target[0] / input_size[0], target[1] / input_size[1])
        out_h, out_w = np.round(np.multiply(input_size, output_scale)).astype(int)
        return ResizeTransform(input_size[0], input_size[1], int(out_h), int(out_w), self.interp)


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
            raise ValueError(f"Unknown crop type {crop_type!r}; expected one of {kinds}")
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
            raise ValueError(f"absolute_range crop_size must be (min, max), got {self.crop_size}")
        ch = np.random.randint(min(h, lo), min(h, hi) + 1)
        cw = np.random.randint(min(w, lo), min(w, hi) + 1)
        return ch, cw


class RandomRotation(Augmentation):
    """Rotate by a random angle (degrees, counter-clockwise)."""

    def __init__(
        self,
        angle: float | Sequence[float],
        expand: bool = True,
        center: Sequence | None = None,
        sample_style: str = "range",
        interp: int | None = None,
    ) -> None:
        """
        Args:
            angle (float | Sequence[float]): with "range", (min, max) degrees; with "choice",
                the angles to choose from.
            expand (bool): grow the canvas to fit the rotated image. Defaults to True.
            center (Sequence | None): with "range", ((xmin, ymin), (xmax, ymax)) relative to
                the image size; with "choice", a list of relative (x, y). Defaults to None
                (the image centre).
            sample_style (str): "range" or "choice". Defaults to "range".
            interp (int | None): PIL resampling filter. Defaults to None (bilinear).
        """
        super().__init__()
        if sample_style not in ("range", "choice"):
            raise ValueError(f"sample_style must be 'range' or 'choice', got {sample_style!r}")
        self.is_range = sample_style == "range"
        if isinstance(angle, (float, int)):
            angle = (angle, angle)
        if center is not None and isinstance(center[0], (float, int)):
            center = (center, center)
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        center = None
        if self.is_range:
            angle = np.random.uniform(self.angle[0], self.angle[1])
            if self.center is not None:
                (x0, y0), (x1, y1) = self.center
                center = (np.random.uniform(x0, x1), np.random.uniform(y0, y1))
        else:
            angle = np.random.choice(self.angle)
            if self.center is not None:
                center = self.center[np.random.randint(len(self.center))]
        if center is not None:
            center = (w * center[0], h * center[1])
        if angle % 360 == 0:
            return NoOpTransform()
        return RotationTransform(h, w, angle, expand=self.expand, center=center, interp=self.interp)


class RandomBrightness(Augmentation):
    """Multiply the image by a random factor in [intensity_min, intensity_max]."""

    def __init__(self, intensity_min: float, intensity_max: float) -> None:
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return BlendTransform(src_image=0, src_weight=1 - w, dst_weight=w)


class RandomContrast(Augmentation):
    """Scale the deviation from the mean pixel value by a random factor."""

    def __init__(self, intensity_min: float, intensity_max: float) -> None:
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return BlendTransform(src_image=image.mean(), src_weight=1 - w, dst_weight=w)


class RandomSaturation(Augmentation):
    """Blend with the grayscale image by a random factor; the image must be RGB."""

    def __init__(self, intensity_min: float, intensity_max: float) -> None:
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"RandomSaturation needs an RGB HWC image, got shape {image.shape}")
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        grayscale = image.dot([0.299, 0.587, 0.114])[:, :, np.newaxis]
        return BlendTransform(src_image=grayscale, src_weight=1 - w, dst_weight=w)


class RandomLighting(Augmentation):
    """AlexNet-style PCA lighting noise along the ImageNet RGB eigenvectors."""

    def __init__(self, scale: float) -> None:
        """
        Args:
            scale (float): standard deviation of the per-eigenvector weights.
        """
        super().__init__()
        self.scale = scale
        self.eigen_vecs = np.array(
            [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
        )
        self.eigen_vals = np.array([0.2175, 0.0188, 0.0045])

    def get_transform(self, image: np.ndarray) -> Transform:
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"RandomLighting needs an RGB HWC image, got shape {image.shape}")
        weights = np.random.normal(scale=self.scale, size=3)
        return BlendTransform(
            src_image=self.eigen_vecs.dot(weights * self.eigen_vals), src_weight=1.0, dst_weight=1.0
        )
