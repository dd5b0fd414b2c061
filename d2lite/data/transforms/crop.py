"""Crop augmentations: random crops, a fixed-size crop-or-pad, and crops with constraints on
what they keep (the share of one category in a label map, the IoU with the boxes)."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from d2lite.structures import Boxes, pairwise_iou

from .augmentation import Augmentation, AugmentationValueError
from .transform import CropTransform, NoOpTransform, PadTransform, Transform, TransformList

__all__ = ["RandomCrop", "FixedSizeCrop", "RandomCrop_CategoryAreaConstraint", "MinIoURandomCrop"]

logger = logging.getLogger(__name__)


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


class FixedSizeCrop(Augmentation):
    """Make the image exactly ``crop_size``: a random crop where it is larger, padding at the
    right and bottom where it is smaller (the crop half of TF's "resize_and_crop", used after
    ``ResizeScale`` in large-scale-jitter training).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        pad: bool = True,
        pad_value: float = 128.0,
        seg_pad_value: int = 255,
    ) -> None:
        """
        Args:
            crop_size (tuple[int, int]): the output (h, w).
            pad (bool): pad images smaller than ``crop_size`` up to it; without it they come
                out smaller. Defaults to True.
            pad_value (float): value of padded image pixels. Defaults to 128.0.
            seg_pad_value (int): value of padded label-map pixels. Defaults to 255.
        """
        super().__init__()
        self._init(locals())

    def _get_crop(self, image: np.ndarray) -> Transform:
        input_size = image.shape[:2]
        out_h, out_w = self.crop_size
        room = np.maximum(np.subtract(input_size, self.crop_size), 0)
        # One random fraction for both axes, as Detectron2 draws it.
        offset = np.round(np.multiply(room, np.random.uniform(0.0, 1.0))).astype(int)
        return CropTransform(offset[1], offset[0], out_w, out_h, input_size[1], input_size[0])

    def _get_pad(self, image: np.ndarray) -> Transform:
        input_size = image.shape[:2]
        pad_h, pad_w = np.maximum(np.subtract(self.crop_size, input_size), 0)
        kept_h, kept_w = np.minimum(input_size, self.crop_size)
        return PadTransform(0, 0, pad_w, pad_h, kept_w, kept_h, self.pad_value, self.seg_pad_value)

    def get_transform(self, image: np.ndarray) -> TransformList:
        transforms = [self._get_crop(image)]
        if self.pad:
            transforms.append(self._get_pad(image))
        return TransformList(transforms)


class RandomCrop_CategoryAreaConstraint(Augmentation):
    """A ``RandomCrop`` that tries (up to 10 times) to find a window in which no single
    category of the label map ``sem_seg`` covers ``single_category_max_area`` or more of the
    area; after 10 tries it keeps the last window.
    """

    def __init__(
        self,
        crop_type: str,
        crop_size: Sequence[float],
        single_category_max_area: float = 1.0,
        ignored_category: int | None = None,
    ) -> None:
        """
        Args:
            crop_type (str): as in ``RandomCrop``.
            crop_size (Sequence[float]): as in ``RandomCrop``.
            single_category_max_area (float): the largest share of the crop one category may
                cover; 1.0 turns the constraint off. Defaults to 1.0.
            ignored_category (int | None): a label exempt from the constraint (usually the
                one ignored in training). Defaults to None.
        """
        super().__init__()
        self.crop_aug = RandomCrop(crop_type, crop_size)
        self._init(locals())

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray) -> Transform:
        if self.single_category_max_area >= 1.0:
            return self.crop_aug.get_transform(image)
        h, w = sem_seg.shape
        for _ in range(10):
            crop_h, crop_w = self.crop_aug.get_crop_size((h, w))
            y0 = np.random.randint(h - crop_h + 1)
            x0 = np.random.randint(w - crop_w + 1)
            if self._is_balanced(sem_seg[y0 : y0 + crop_h, x0 : x0 + crop_w]):
                break
        return CropTransform(x0, y0, crop_w, crop_h)

    def _is_balanced(self, window: np.ndarray) -> bool:
        """Whether ``window`` has 2+ categories, none at ``single_category_max_area``."""
        labels, counts = np.unique(window, return_counts=True)
        if self.ignored_category is not None:
            counts = counts[labels != self.ignored_category]
        return len(counts) > 1 and counts.max() < counts.sum() * self.single_category_max_area


def _centers_inside(boxes: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """Which of ``boxes (np.ndarray[N, 4])`` have their centre strictly inside ``patch``."""
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    return ((center > patch[:2]) & (center < patch[2:])).all(axis=1)


class MinIoURandomCrop(Augmentation):
    """SSD-style crop: pick an IoU threshold from ``min_ious`` (or 1: no crop), then look for a
    crop whose IoU with every box reaches it and that keeps at least one box centre.
    """

    def __init__(
        self,
        min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
        min_crop_size: float = 0.3,
        mode_trials: int = 1000,
        crop_trials: int = 50,
    ) -> None:
        """
        Args:
            min_ious (Sequence[float]): the IoU thresholds to choose from (0 is added: any
                crop). Defaults to (0.1, 0.3, 0.5, 0.7, 0.9).
            min_crop_size (float): the crop's sides are at least this fraction of the image's.
                Defaults to 0.3.
            mode_trials (int): how many thresholds to try. Defaults to 1000.
            crop_trials (int): how many crops to try per threshold. Defaults to 50.
        """
        super().__init__()
        self._init(locals())
        self.sample_mode = (1, *min_ious, 0)

    def get_transform(self, image: np.ndarray, boxes: np.ndarray | None) -> Transform:
        if boxes is None:
            return NoOpTransform()
        h, w = image.shape[:2]
        for _ in range(self.mode_trials):
            self.mode = np.random.choice(self.sample_mode)
            if self.mode == 1:
                return NoOpTransform()
            crop = self._find_crop(w, h, np.asarray(boxes).reshape(-1, 4), self.mode)
            if crop is not None:
                return crop
        # Detectron2 returns None here and fails; keeping the image whole is safe.
        logger.warning(
            "MinIoURandomCrop found no crop in %d trials; not cropping", self.mode_trials
        )
        return NoOpTransform()

    def _find_crop(self, w: int, h: int, boxes: np.ndarray, min_iou: float) -> Transform | None:
        """Try ``crop_trials`` random crops; return the first that meets ``min_iou``."""
        for _ in range(self.crop_trials):
            new_w = np.random.uniform(self.min_crop_size * w, w)
            new_h = np.random.uniform(self.min_crop_size * h, h)
            if not 0.5 <= new_h / new_w <= 2:
                continue
            # uniform(x) draws between x and 1 (x is `low`), not in [0, x]: Detectron2 (after
            # mmdet) does so, and the same draws give the same crops for the same seed.
            left = np.random.uniform(w - new_w)
            top = np.random.uniform(h - new_h)
            patch = np.array((int(left), int(top), int(left + new_w), int(top + new_h)))
            if patch[2] == patch[0] or patch[3] == patch[1]:
                continue  # a line or a point
            ious = pairwise_iou(Boxes(patch.reshape(-1, 4)), Boxes(boxes)).reshape(-1)
            if len(ious) > 0 and (ious.min() < min_iou or not _centers_inside(boxes, patch).any()):
                continue
            # Sized int(new_w), not patch's width (which can be 1 more), as in Detectron2.
            return CropTransform(int(left), int(top), int(new_w), int(new_h))
        return None
