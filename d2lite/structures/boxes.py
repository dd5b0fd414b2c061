"""Axis-aligned boxes: ``BoxMode`` conversions, the ``Boxes`` container and pairwise overlaps.

N, M: number of boxes in the first and second set.
"""

from __future__ import annotations

import math
from enum import IntEnum, unique
from typing import Iterator, Sequence, Union

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BoxMode",
    "Boxes",
    "pairwise_intersection",
    "pairwise_iou",
    "pairwise_ioa",
    "matched_pairwise_iou",
    "pairwise_point_box_distance",
]

_RawBoxType = Union[list, tuple, Tensor, np.ndarray]


@unique
class BoxMode(IntEnum):
    """How the numbers of a box are to be read.

    Dataset dicts store the mode next to the box (``bbox_mode``) because COCO files use XYWH while
    the model works in XYXY.
    """

    XYXY_ABS = 0
    """(x0, y0, x1, y1) in absolute floating-point pixels."""
    XYWH_ABS = 1
    """(x0, y0, w, h) in absolute floating-point pixels."""
    XYXY_REL = 2
    """(x0, y0, x1, y1) relative to the image size; not convertible, as in Detectron2."""
    XYWH_REL = 3
    """(x0, y0, w, h) relative to the image size; not convertible, as in Detectron2."""
    XYWHA_ABS = 4
    """(xc, yc, w, h, a): a box rotated by ``a`` degrees counter-clockwise about its centre."""

    @staticmethod
    def convert(box: _RawBoxType, from_mode: BoxMode, to_mode: BoxMode) -> _RawBoxType:
        """Convert one box or a batch of boxes between modes.

        XYXY_ABS, XYWH_ABS and XYWHA_ABS convert into one another; a rotated box becomes the
        axis-aligned box enclosing it, an axis-aligned box becomes a rotated box of angle 0.

        Args:
            box (list | tuple | np.ndarray[N, k] | Tensor[N, k]): a single box as a k-sequence,
                or N boxes as an array or tensor; k is 5 for XYWHA_ABS and 4 otherwise.
            from_mode (BoxMode): the mode ``box`` is in.
            to_mode (BoxMode): the mode wanted.

        Returns:
            The converted box(es), of the same type (and dtype) as ``box``.

        Raises:
            AssertionError: if a relative mode is involved (and the modes differ), as Detectron2.
        """
        from_mode, to_mode = BoxMode(from_mode), BoxMode(to_mode)
        if from_mode == to_mode:
            return box
        rel_modes = (BoxMode.XYXY_REL, BoxMode.XYWH_REL)
        assert (
            from_mode not in rel_modes and to_mode not in rel_modes
        ), f"Relative mode not yet supported! (from {from_mode.name} to {to_mode.name})"
        original_type = type(box)
        single_box = isinstance(box, (list, tuple))
        is_numpy = isinstance(box, np.ndarray)
        if single_box:
            assert len(box) in (4, 5), f"BoxMode.convert takes a box of 4 or 5 numbers, got {box}"
            arr = torch.tensor(box)[None, :]
        elif is_numpy:
            arr = torch.from_numpy(np.asarray(box)).clone()
        else:
            arr = box.clone()
        width = 5 if from_mode == BoxMode.XYWHA_ABS else 4
        assert arr.shape[-1] == width, f"{from_mode.name} boxes have {width} numbers: {arr.shape}"

        if from_mode == BoxMode.XYWHA_ABS:
            arr, from_mode = _xywha_to_xyxy(arr), BoxMode.XYXY_ABS
        # XYWHA_ABS is reached from XYWH_ABS, so an XYXY_ABS box goes through XYWH_ABS first.
        axis_aligned_target = BoxMode.XYWH_ABS if to_mode == BoxMode.XYWHA_ABS else to_mode
        if from_mode == BoxMode.XYWH_ABS and axis_aligned_target == BoxMode.XYXY_ABS:
            arr[:, 2] += arr[:, 0]
            arr[:, 3] += arr[:, 1]
        elif from_mode == BoxMode.XYXY_ABS and axis_aligned_target == BoxMode.XYWH_ABS:
            arr[:, 2] -= arr[:, 0]
            arr[:, 3] -= arr[:, 1]
        if to_mode == BoxMode.XYWHA_ABS:
            arr = _xywh_to_xywha(arr)

        if single_box:
            return original_type(arr.flatten().tolist())
        if is_numpy:
            return arr.numpy()
        return arr


def _xywha_to_xyxy(arr: Tensor) -> Tensor:
    """Tensor[N, 5] rotated boxes -> Tensor[N, 4] XYXY boxes enclosing them (same dtype)."""
    # float64 for the trigonometry: a 90-degree float32 cosine is 4e-8, not 0.
    xywha = arr.double()
    angle = xywha[:, 4] * math.pi / 180.0
    cos, sin = angle.cos().abs(), angle.sin().abs()
    w, h = xywha[:, 2], xywha[:, 3]
    half_w, half_h = (cos * w + sin * h) / 2.0, (cos * h + sin * w) / 2.0
    cx, cy = xywha[:, 0], xywha[:, 1]
    xyxy = torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=1)
    return xyxy.to(arr.dtype)


def _xywh_to_xywha(arr: Tensor) -> Tensor:
    """Tensor[N, 4] XYWH boxes -> Tensor[N, 5] rotated boxes of angle 0 (same dtype)."""
    xywh = arr.double()
    centres = xywh[:, :2] + xywh[:, 2:] / 2.0
    angles = xywh.new_zeros((len(xywh), 1))
    return torch.cat((centres, xywh[:, 2:], angles), dim=1).to(arr.dtype)


class Boxes:
    """N boxes in XYXY_ABS, stored as a float32 ``Tensor[N, 4]``.

    Attributes:
        tensor (Tensor[N, 4]): the boxes, one ``(x0, y0, x1, y1)`` per row.
    """

    def __init__(self, tensor: Tensor | np.ndarray | list) -> None:
        """
        Args:
            tensor (Tensor[N, 4] | np.ndarray | list): the boxes in XYXY_ABS. An empty input of
                any shape becomes a ``(0, 4)`` tensor.
        """
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(tensor, dtype=torch.float32, device=torch.device("cpu"))
        else:
            tensor = tensor.to(torch.float32)
        if tensor.numel() == 0:
            # Keeps "no boxes" a valid (0, 4) tensor so every code path can index and cat it.
            tensor = tensor.reshape((-1, 4))
        assert (
            tensor.dim() == 2 and tensor.size(-1) == 4
        ), f"Boxes need a [N, 4] tensor, got {tuple(tensor.shape)}"
        self.tensor = tensor

    def clone(self) -> Boxes:
        """Return a copy whose tensor does not share storage with this one."""
        return Boxes(self.tensor.clone())

    def to(self, device: torch.device | str) -> Boxes:
        """Return the boxes on ``device``."""
        return Boxes(self.tensor.to(device=device))

    @property
    def device(self) -> torch.device:
        """The device the boxes live on."""
        return self.tensor.device

    def area(self) -> Tensor:
        """Return the areas as a ``Tensor[N]``."""
        box = self.tensor
        return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])

    def clip(self, box_size: tuple[int, int]) -> None:
        """Clip the boxes in place to ``[0, width] x [0, height]``.

        Args:
            box_size (tuple[int, int]): (height, width) of the clipping region.
        """
        assert torch.isfinite(self.tensor).all(), "Box tensor contains infinite or NaN!"
        h, w = box_size
        x1 = self.tensor[:, 0].clamp(min=0, max=w)
        y1 = self.tensor[:, 1].clamp(min=0, max=h)
        x2 = self.tensor[:, 2].clamp(min=0, max=w)
        y2 = self.tensor[:, 3].clamp(min=0, max=h)
        self.tensor = torch.stack((x1, y1, x2, y2), dim=-1)

    def nonempty(self, threshold: float = 0.0) -> Tensor:
        """Return a ``Tensor[N]`` bool mask of boxes whose width and height exceed ``threshold``.

        Args:
            threshold (float): boxes with either side <= this are empty. Defaults to 0.0.
        """
        box = self.tensor
        widths = box[:, 2] - box[:, 0]
        heights = box[:, 3] - box[:, 1]
        return (widths > threshold) & (heights > threshold)

    def inside_box(self, box_size: tuple[int, int], boundary_threshold: int = 0) -> Tensor:
        """Return a ``Tensor[N]`` bool mask of boxes inside the image (with a tolerance).

        Args:
            box_size (tuple[int, int]): (height, width) of the image.
            boundary_threshold (int): boxes may extend this many pixels beyond the image.
                Defaults to 0.
        """
        height, width = box_size
        t = boundary_threshold
        return (
            (self.tensor[..., 0] >= -t)
            & (self.tensor[..., 1] >= -t)
            & (self.tensor[..., 2] < width + t)
            & (self.tensor[..., 3] < height + t)
        )

    def get_centers(self) -> Tensor:
        """Return the box centres as a ``Tensor[N, 2]`` of (x, y)."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale the boxes in place, x coordinates by ``scale_x`` and y by ``scale_y``."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    def __getitem__(self, item: int | slice | Tensor) -> Boxes:
        """Index with an int, a slice, a bool mask or an index tensor; always returns ``Boxes``."""
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        b = self.tensor[item]
        assert b.dim() == 2, f"Indexing Boxes with {item} gave a {b.dim()}-d tensor"
        return Boxes(b)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return f"Boxes({self.tensor})"

    def __iter__(self) -> Iterator[Tensor]:
        """Yield each box as a ``Tensor[4]``."""
        yield from self.tensor

    @classmethod
    def cat(cls, boxes_list: Sequence[Boxes]) -> Boxes:
        """Concatenate a list of ``Boxes`` into one (an empty list gives zero boxes)."""
        assert isinstance(
            boxes_list, (list, tuple)
        ), f"Boxes.cat takes a list, got {type(boxes_list)}"
        if len(boxes_list) == 0:
            return cls(torch.empty(0))
        assert all(isinstance(b, Boxes) for b in boxes_list), "Boxes.cat takes a list of Boxes"
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))


def pairwise_intersection(boxes1: Boxes, boxes2: Boxes) -> Tensor:
    """Return the intersection areas of every pair as a ``Tensor[N, M]``."""
    b1, b2 = boxes1.tensor, boxes2.tensor
    width_height = torch.min(b1[:, None, 2:], b2[:, 2:]) - torch.max(b1[:, None, :2], b2[:, :2])
    width_height.clamp_(min=0)
    return width_height.prod(dim=2)


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> Tensor:
    """Return the IoU of every pair as a ``Tensor[N, M]``.

    Pairs that do not overlap (including degenerate boxes of zero area) get 0 rather than NaN.
    """
    area1 = boxes1.area()
    area2 = boxes2.area()
    inter = pairwise_intersection(boxes1, boxes2)
    return torch.where(
        inter > 0,
        inter / (area1[:, None] + area2 - inter),
        torch.zeros(1, dtype=inter.dtype, device=inter.device),
    )


def pairwise_ioa(boxes1: Boxes, boxes2: Boxes) -> Tensor:
    """Return intersection over the area of ``boxes2`` for every pair, as a ``Tensor[N, M]``."""
    area2 = boxes2.area()
    inter = pairwise_intersection(boxes1, boxes2)
    return torch.where(
        inter > 0, inter / area2, torch.zeros(1, dtype=inter.dtype, device=inter.device)
    )


def pairwise_point_box_distance(points: Tensor, boxes: Boxes) -> Tensor:
    """Return the distances from every point to the four sides of every box.

    Args:
        points (Tensor[N, 2]): (x, y) of each point.
        boxes (Boxes): M boxes.

    Returns:
        Tensor[N, M, 4]: (left, top, right, bottom) distances, all positive when the point is
        inside the box (the regression targets of anchor-free detectors such as FCOS).
    """
    x, y = points[:, 0, None], points[:, 1, None]
    x0, y0, x1, y1 = boxes.tensor[None].unbind(dim=2)
    return torch.stack((x - x0, y - y0, x1 - x, y1 - y), dim=2)


def matched_pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> Tensor:
    """Return the IoU of each box with the box at the same index, as a ``Tensor[N]``.

    Args:
        boxes1 (Boxes): N boxes.
        boxes2 (Boxes): N boxes.
    """
    assert len(boxes1) == len(
        boxes2
    ), f"boxlists should have the same number of entries, got {len(boxes1)}, {len(boxes2)}"
    b1, b2 = boxes1.tensor, boxes2.tensor
    width_height = (torch.min(b1[:, 2:], b2[:, 2:]) - torch.max(b1[:, :2], b2[:, :2])).clamp(min=0)
    inter = width_height.prod(dim=1)
    union = boxes1.area() + boxes2.area() - inter
    return torch.where(inter > 0, inter / union, torch.zeros_like(inter))
