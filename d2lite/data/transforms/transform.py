"""Deterministic transforms of an image and its boxes.

fvcore provides ``Transform``, ``TransformList`` and the flip/crop/pad/blend/scale/no-op
transforms; this module adds the ones Detectron2 adds: resize, rotation, extent (crop-and-scale)
and the colour wrappers. Resampling is done with PIL (d2lite does not depend on OpenCV) and, for
float images, with ``torch.nn.functional.interpolate`` exactly as Detectron2 does. Images are HWC
(or HW) numpy arrays, uint8 or float; coordinates are continuous, so a pixel ``(i, j)`` covers
``[j, j+1] x [i, i+1]``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.transforms.transform import (
    BlendTransform,
    CropTransform,
    GridSampleTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    ScaleTransform,
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
    "ScaleTransform",
    "GridSampleTransform",
    "ExtentTransform",
    "ResizeTransform",
    "RotationTransform",
    "ColorTransform",
    "PILColorTransform",
]

# The PIL filters that torch can reproduce on float images, and torch's names for them.
_TORCH_RESIZE_MODES = {
    Image.NEAREST: "nearest", Image.BILINEAR: "bilinear", Image.BICUBIC: "bicubic"
}

# Detectron2 rotates with OpenCV, so RotationTransform's ``interp`` is an OpenCV flag. These are
# the PIL filters closest to each one (PIL's affine warp knows only nearest, bilinear, bicubic):
# INTER_NEAREST, LINEAR, CUBIC, AREA (OpenCV warps it as linear), LANCZOS4, LINEAR_EXACT,
# NEAREST_EXACT.
_CV2_TO_PIL = {
    0: Image.NEAREST,
    1: Image.BILINEAR,
    2: Image.BICUBIC,
    3: Image.BILINEAR,
    4: Image.BICUBIC,
    5: Image.BILINEAR,
    6: Image.NEAREST,
}
_CV2_INTER_NEAREST = 0
_CV2_INTER_LINEAR = 1


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


def _resize_torch(img: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize a float HW, HWC (or HWxx) array to ``size`` (h, w) with ``F.interpolate``."""
    shape = list(img.shape)
    tensor = torch.from_numpy(np.ascontiguousarray(img))
    # NCHW for interpolate: the trailing dims become N and C, H and W go last.
    tensor = tensor.reshape(shape[:2] + [1] * (4 - len(shape)) + shape[2:]).permute(2, 3, 0, 1)
    align_corners = None if mode == "nearest" else False
    out = F.interpolate(tensor, size, mode=mode, align_corners=align_corners)
    return out.permute(2, 3, 0, 1).reshape(list(size) + shape[2:]).numpy()


def _check_input_size(tfm: Transform, img: np.ndarray) -> None:
    expected, got = (tfm.h, tfm.w), img.shape[:2]
    assert got == expected, f"{type(tfm).__name__} expects an image of size {expected}, got {got}"


class ResizeTransform(Transform):
    """Resize an image from ``(h, w)`` to ``(new_h, new_w)``.

    uint8 images are resized by PIL; float images by ``F.interpolate`` (``align_corners=False``)
    as in Detectron2, which keeps their values the same in both libraries. Filters torch lacks
    (e.g. ``Image.LANCZOS``) and integer images other than uint8 fall back to PIL per channel.
    """

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
        interp = Image.BILINEAR if interp is None else interp
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray, interp: int | None = None) -> np.ndarray:
        """Resize ``img`` (HW or HWC)."""
        _check_input_size(self, img)
        assert img.ndim <= 4, f"ResizeTransform takes HW, HWC or HWxx arrays, got {img.shape}"
        resample = interp if interp is not None else self.interp
        if np.issubdtype(img.dtype, np.floating) and resample in _TORCH_RESIZE_MODES:
            return _resize_torch(img, (self.new_h, self.new_w), _TORCH_RESIZE_MODES[resample])
        size = (self.new_w, self.new_h)
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
            interp (int | None): an OpenCV interpolation flag, as in Detectron2
                (``cv2.INTER_NEAREST`` 0, ``INTER_LINEAR`` 1, ``INTER_CUBIC`` 2, ...), done
                with the nearest PIL filter. Defaults to None (``INTER_LINEAR``).
        """
        super().__init__()
        image_center = np.array((w / 2, h / 2))
        center = image_center if center is None else center
        interp = _CV2_INTER_LINEAR if interp is None else interp
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
        _check_input_size(self, img)
        flag = interp if interp is not None else self.interp
        if flag not in _CV2_TO_PIL:
            raise ValueError(f"RotationTransform: unknown OpenCV interpolation flag {flag}")
        # PIL wants the output -> input mapping; both use continuous pixel coordinates.
        full = np.vstack([self.rm_coords, [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(full)[:2].flatten().tolist()
        size = (int(self.bound_w), int(self.bound_h))
        resample = _CV2_TO_PIL[flag]
        return _apply_pil(img, lambda pil: pil.transform(size, Image.AFFINE, inv, resample))

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Rotate ``coords (np.ndarray[N, 2])`` of (x, y)."""
        coords = np.asarray(coords, dtype=float)
        if len(coords) == 0 or self.angle % 360 == 0:
            return coords
        return coords @ self.rm_coords[:, :2].T + self.rm_coords[:, 2]

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Rotate a label map with nearest-neighbour so labels stay labels."""
        return self.apply_image(segmentation, interp=_CV2_INTER_NEAREST)

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


def _fill_color(fill: Any, pil: Image.Image) -> Any:
    """``fill`` as PIL's ``fillcolor`` for this image: one value per band."""
    bands = len(pil.getbands())
    if np.ndim(fill) == 0:
        value = float(fill) if pil.mode == "F" else int(round(float(fill)))
        # A bare number would fill only the first band of an RGB image.
        return value if bands == 1 else (value,) * bands
    return tuple(int(round(float(v))) for v in fill)


class ExtentTransform(Transform):
    """Take the region ``src_rect`` of the image (it may reach outside) and scale it to
    ``output_size``. Pixels of the region that fall outside the image get ``fill``.
    """

    def __init__(
        self,
        src_rect: Sequence[float],
        output_size: tuple[int, int],
        interp: int = Image.BILINEAR,
        fill: float | Sequence[float] = 0,
    ) -> None:
        """
        Args:
            src_rect (Sequence[float]): (x0, y0, x1, y1) in input pixels.
            output_size (tuple[int, int]): (h, w) of the output.
            interp (int): a PIL resampling filter. Defaults to bilinear.
            fill (float | Sequence[float]): value outside the input image. Defaults to 0.
                (Detectron2 hands it to PIL's unrelated ``fill`` argument, so it always fills
                with 0; d2lite uses it as the documented fill colour. The default is the same.)
        """
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray, interp: int | None = None) -> np.ndarray:
        """Crop-and-scale ``img`` (HW or HWC) to ``output_size``."""
        h, w = self.output_size
        # `is not None`: Image.NEAREST is 0, and apply_segmentation must get nearest.
        resample = interp if interp is not None else self.interp
        rect = tuple(float(v) for v in self.src_rect)

        def extent(pil: Image.Image) -> Image.Image:
            fill = _fill_color(self.fill, pil)
            return pil.transform((w, h), Image.EXTENT, rect, resample, fillcolor=fill)

        return _apply_pil(img, extent)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Map ``coords (np.ndarray[N, 2])`` of (x, y) into the output; returns float32."""
        h, w = self.output_size
        x0, y0, x1, y1 = self.src_rect
        # Centre on the rect, scale, re-centre on the output: in place in float32, step by
        # step as Detectron2 does, so both round the same way.
        out = coords.astype(np.float32)
        out[:, 0] -= 0.5 * (x0 + x1)
        out[:, 1] -= 0.5 * (y0 + y1)
        out[:, 0] *= w / (x1 - x0)
        out[:, 1] *= h / (y1 - y0)
        out[:, 0] += 0.5 * w
        out[:, 1] += 0.5 * h
        return out

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Crop-and-scale a label map with nearest-neighbour."""
        return self.apply_image(segmentation, interp=Image.NEAREST)


class ColorTransform(Transform):
    """Run ``op`` on the image only: a photometric change that moves no coordinates."""

    def __init__(self, op: Callable[[np.ndarray], np.ndarray]) -> None:
        """
        Args:
            op (Callable[[np.ndarray], np.ndarray]): takes the image array, returns the new one.

        Raises:
            ValueError: ``op`` is not callable.
        """
        if not callable(op):
            raise ValueError("op parameter should be callable")
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """Return ``op(img)``."""
        return self.op(img)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """Coordinates are unchanged."""
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Label maps are unchanged."""
        return segmentation

    def inverse(self) -> Transform:
        """Geometrically a no-op, so its inverse is too."""
        return NoOpTransform()


class PILColorTransform(ColorTransform):
    """A ``ColorTransform`` whose ``op`` takes and returns a PIL image (e.g. ``ImageOps``).

    ``PILColorTransform(op)`` takes the PIL operation, ``Callable[[Image.Image], Image.Image]``,
    and raises ``ValueError`` if it is not callable.
    """

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """Run ``op`` on ``img`` as a PIL image and return a (writable) array."""
        return np.array(self.op(Image.fromarray(img)))
