"""Deterministic transforms of an image and its boxes.

fvcore provides ``Transform``, ``TransformList`` and the flip/crop/blend/no-op transforms; this
module adds the ones that need resampling (resize, rotation), done with PIL since d2lite avoids
OpenCV. Images are HWC (or HW) numpy arrays, uint8 or float; coordinates are continuous, so a
pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from fvcore.transforms.transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    Transform,
    TransformList,
    VFlipTransform,
)
from PIL import Image

__all__ = [
    "Transform",
    "TransformList",
    "NoOpTransform",
    "HFlipTransform",
    "VFlipTransform",
    "CropTransform",
    "BlendTransform",
    "PadTransform",
    "ResizeTransform",
    "RotationTransform",
]


def _apply_pil(img: np.ndarray, func: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    """Run a PIL operation on an HW or HWC array of any channel count and dtype.

    uint8 images with 1, 3 or 4 channels go through PIL in one piece; anything else (float images,
    other channel counts) is processed one channel at a time as 32-bit float ("F" mode).
    """
    squeeze = img.ndim == 2
    img3 = img[:, :, None] if squeeze else img
    channels = img3.shape[2]
    if img.dtype == np.uint8 and channels in (1, 3, 4):
        pil = Image.fromarray(img3[:, :, 0] if channels == 1 else np.ascontiguousarray(img3))
        out = np.array(func(pil))  # writable: later transforms may wrap it in a tensor
        out = out[:, :, None] if out.ndim == 2 else out
    else:
        planes = [
            np.asarray(func(Image.fromarray(img3[:, :, c].astype(np.float32))))
            for c in range(channels)
        ]
        out = np.stack(planes, axis=2)
        if np.issubdtype(img.dtype, np.integer):
            # Round, not truncate: bilinear output like 254.9999 must stay 255.
            info = np.iinfo(img.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(img.dtype)
    return out[:, :, 0] if squeeze else out


class ResizeTransform(Transform):
    """Resize an image from ``(h, w)`` to ``(new_h, new_w)``."""

    def __init__(self, h: int, w: int, new_h: int, new_w: int, interp: int | None = None) -> None:
        """
        Args:
            h (int): input height.
            w (int): input width.
            new_h (int): output height.
            new_w (int): output width.
            interp (int | None): a PIL resampling filter. Defaults to None (bilinear).
        """
        super().__init__()
        if interp is None:
            interp = Image.BILINEAR
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray, interp: int | None = None) -> np.ndarray:
        """Resize ``img`` (HW or HWC) with PIL."""
        assert img.shape[:2] == (
            self.h,
            self.w,
        ), f"ResizeTransform expects an image of size {(self.h, self.w)}, got {img.shape[:2]}"
        size = (self.new_w, self.new_h)
        resample = interp if interp is not None else self.interp
        return _apply_pil(img, lambda pil: pil.resize(size, resample))

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Scale ``coords (np.ndarray[N, 2])`` of (x, y) to the new size."""
        coords[:, 0] = coords[:, 0] * (self.new_w * 1.0 / self.w)
        coords[:, 1] = coords[:, 1] * (self.new_h * 1.0 / self.h)
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Resize a label map with nearest-neighbour so labels stay labels."""
        return self.apply_image(segmentation, interp=Image.NEAREST)

    def inverse(self) -> Transform:
        """Return the resize back to the original size."""
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


class RotationTransform(Transform):
    """Rotate an image counter-clockwise by ``angle`` degrees around ``center``.

    With ``expand`` the output canvas grows to hold the whole rotated image; otherwise it keeps
    the input size and the corners are cut off.
    """

    def __init__(
        self,
        h: int,
        w: int,
        angle: float,
        expand: bool = True,
        center: tuple[float, float] | None = None,
        interp: int | None = None,
    ) -> None:
        """
        Args:
            h (int): input height.
            w (int): input width.
            angle (float): degrees, counter-clockwise.
            expand (bool): grow the canvas to fit the rotated image. Defaults to True.
            center (tuple[float, float] | None): (x, y) to rotate around, in pixels.
                Defaults to None (the image centre). Ignored when ``expand`` is True, since
                the rotated image is then re-centred on the new canvas anyway.
            interp (int | None): a PIL resampling filter. Defaults to None (bilinear).
        """
        super().__init__()
        image_center = np.array((w / 2, h / 2))
        if center is None:
            center = image_center
        if interp is None:
            interp = Image.BILINEAR
        abs_cos, abs_sin = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
        if expand:
            bound_w, bound_h = np.rint(
                [h * abs_sin + w * abs_cos, h * abs_cos + w * abs_sin]
            ).astype(int)
        else:
            bound_w, bound_h = w, h
        self._set_attributes(locals())
        self.rm_coords = self._rotation_matrix()

    def _rotation_matrix(self) -> np.ndarray:
        """Return the 2x3 matrix mapping input (x, y) to output (x, y)."""
        theta = np.deg2rad(self.angle)
        cos, sin = np.cos(theta), np.sin(theta)
        cx, cy = self.center
        # Counter-clockwise on screen means clockwise in maths axes, because y points down.
        rm = np.array(
            [[cos, sin, (1 - cos) * cx - sin * cy], [-sin, cos, sin * cx + (1 - cos) * cy]]
        )
        if self.expand:
            rotated_center = rm @ np.array([*self.image_center, 1.0])
            rm[:, 2] += np.array([self.bound_w / 2, self.bound_h / 2]) - rotated_center
        return rm

    def apply_image(self, img: np.ndarray, interp: int | None = None) -> np.ndarray:
        """Rotate ``img`` (HW or HWC); uncovered pixels are 0."""
        if img.size == 0 or self.angle % 360 == 0:
            return img
        assert img.shape[:2] == (
            self.h,
            self.w,
        ), f"RotationTransform expects an image of size {(self.h, self.w)}, got {img.shape[:2]}"
        # PIL wants the output -> input mapping; both use continuous pixel coordinates.
        full = np.vstack([self.rm_coords, [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(full)[:2].flatten().tolist()
        size = (int(self.bound_w), int(self.bound_h))
        resample = interp if interp is not None else self.interp
        return _apply_pil(img, lambda pil: pil.transform(size, Image.AFFINE, inv, resample))

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Rotate ``coords (np.ndarray[N, 2])`` of (x, y)."""
        coords = np.asarray(coords, dtype=float)
        if len(coords) == 0 or self.angle % 360 == 0:
            return coords
        return coords @ self.rm_coords[:, :2].T + self.rm_coords[:, 2]

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Rotate a label map with nearest-neighbour so labels stay labels."""
        return self.apply_image(segmentation, interp=Image.NEAREST)

    def inverse(self) -> Transform:
        """Return the rotation back, followed by a crop to the original size.

        Raises:
            NotImplementedError: without ``expand`` the cut-off corners cannot be restored.
        """
        if not self.expand:
            raise NotImplementedError("cannot invert a RotationTransform with expand=False")
        rotation = RotationTransform(
            self.bound_h, self.bound_w, -self.angle, True, None, self.interp
        )
        crop = CropTransform(
            (rotation.bound_w - self.w) // 2, (rotation.bound_h - self.h) // 2, self.w, self.h
        )
        return TransformList([rotation, crop])
