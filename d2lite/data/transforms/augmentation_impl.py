"""The concrete augmentations: flips, resizes, rotation and extent here; crops in ``crop.py``
and photometric jitter in ``photometric.py``, re-exported so that every augmentation Detectron2's
``augmentation_impl`` has can be imported from this module too.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np
from PIL import Image

from .augmentation import AugInput, Augmentation, AugmentationValueError, _transform_to_aug
from .crop import FixedSizeCrop, MinIoURandomCrop, RandomCrop, RandomCrop_CategoryAreaConstraint
from .photometric import RandomBrightness, RandomContrast, RandomLighting, RandomSaturation
from .transform import (
    ExtentTransform,
    HFlipTransform,
    NoOpTransform,
    ResizeTransform,
    RotationTransform,
    Transform,
    VFlipTransform,
)

__all__ = [
    "FixedSizeCrop",
    "RandomApply",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomExtent",
    "RandomFlip",
    "RandomSaturation",
    "RandomLighting",
    "RandomRotation",
    "Resize",
    "ResizeScale",
    "ResizeShortestEdge",
    "RandomCrop_CategoryAreaConstraint",
    "RandomResize",
    "MinIoURandomCrop",
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
            raise AugmentationValueError(f"RandomApply probability must be in [0, 1], got {prob}")
        self.aug = _transform_to_aug(tfm_or_aug)
        self.prob = prob

    def get_transform(self, *args: Any) -> Transform:
        if self._rand_range() < self.prob:
            return self.aug.get_transform(*args)
        return NoOpTransform()

    def __call__(self, aug_input: AugInput) -> Transform:
        # The wrapped augmentation reads its own inputs from aug_input.
        if self._rand_range() < self.prob:
            return self.aug(aug_input)
        return NoOpTransform()

    def __repr__(self) -> str:
        # The wrapped object is stored as `aug`, not under its argument name.
        return f"RandomApply({self.aug!r}, prob={self.prob!r})"


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


def _is_range(sample_style: str) -> bool:
    """Whether ``sample_style`` is "range" (else it is "choice")."""
    if sample_style not in ("range", "choice"):
        raise AugmentationValueError(
            f"sample_style must be 'range' or 'choice', got {sample_style!r}"
        )
    return sample_style == "range"


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
        shape = (shape, shape) if isinstance(shape, int) else tuple(shape)
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
        self.is_range = _is_range(sample_style)
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        if self.is_range and len(short_edge_length) != 2:
            raise AugmentationValueError(
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
    """Resize to fit ``(target_height, target_width)`` times a random scale, keeping the aspect.

    The resize half of TF's "resize_and_crop" (large-scale jitter); ``FixedSizeCrop`` is the
    other half.
    """

    def __init__(
        self,
        min_scale: float,
        max_scale: float,
        target_height: int,
        target_width: int,
        interp: int = Image.BILINEAR,
    ) -> None:
        """
        Args:
            min_scale (float): smallest scale of the target size.
            max_scale (float): largest scale of the target size.
            target_height (int): target height before scaling.
            target_width (int): target width before scaling.
            interp (int): PIL resampling filter. Defaults to bilinear.
        """
        super().__init__()
        self._init(locals())

    def _get_resize(self, image: np.ndarray, scale: float) -> Transform:
        """The resize that fits ``image`` inside the target size times ``scale``."""
        input_size = image.shape[:2]
        target = np.multiply((self.target_height, self.target_width), scale)
        output_scale = min(target[0] / input_size[0], target[1] / input_size[1])
        out_h, out_w = np.round(np.multiply(input_size, output_scale)).astype(int)
        return ResizeTransform(input_size[0], input_size[1], int(out_h), int(out_w), self.interp)

    def get_transform(self, image: np.ndarray) -> Transform:
        return self._get_resize(image, np.random.uniform(self.min_scale, self.max_scale))


class RandomResize(Augmentation):
    """Resize to one (h, w) drawn uniformly from ``shape_list``."""

    def __init__(self, shape_list: Sequence[tuple[int, int]], interp: int = Image.BILINEAR) -> None:
        """
        Args:
            shape_list (Sequence[tuple[int, int]]): the (h, w) sizes to choose from.
            interp (int): PIL resampling filter. Defaults to bilinear.
        """
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = self.shape_list[np.random.randint(low=0, high=len(self.shape_list))]
        return ResizeTransform(image.shape[0], image.shape[1], h, w, self.interp)


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
            interp (int | None): an OpenCV interpolation flag, as ``RotationTransform`` takes.
                Defaults to None (linear).
        """
        super().__init__()
        self.is_range = _is_range(sample_style)
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


class RandomExtent(Augmentation):
    """Crop a random sub-rectangle of the image, which may reach outside it (filled with 0).

    The rectangle is the image's own, scaled by a factor drawn from ``scale_range`` and shifted
    by up to ``shift_range`` times half the image size; the output has the rectangle's size.
    """

    def __init__(self, scale_range: tuple[float, float], shift_range: tuple[float, float]) -> None:
        """
        Args:
            scale_range (tuple[float, float]): (low, high) of the size factor.
            shift_range (tuple[float, float]): (x, y); the centre moves by ``w / 2 * U(-x, x)``
                and ``h / 2 * U(-y, y)``. (0, 0) crops around the image centre.
        """
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        img_h, img_w = image.shape[:2]
        # The image's rectangle centred on the origin, so the scaling keeps it centred.
        rect = np.array([-0.5 * img_w, -0.5 * img_h, 0.5 * img_w, 0.5 * img_h])
        rect *= np.random.uniform(self.scale_range[0], self.scale_range[1])
        rect[0::2] += self.shift_range[0] * img_w * (np.random.rand() - 0.5)
        rect[1::2] += self.shift_range[1] * img_h * (np.random.rand() - 0.5)
        rect[0::2] += 0.5 * img_w
        rect[1::2] += 0.5 * img_h
        output_size = (int(rect[3] - rect[1]), int(rect[2] - rect[0]))
        return ExtentTransform(src_rect=tuple(rect), output_size=output_size)
