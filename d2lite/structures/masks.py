"""Instance masks: held as data, never predicted (d2lite detects boxes only).

N: masks, H, W: image size.

Datasets and tests often attach ``gt_masks`` to their ground truth even for a box model, so
:class:`BitMasks` is a real container: it stores, indexes, moves and concatenates the masks
and gives their bounding boxes, and ``polygons_to_bitmask`` rasterises polygons. What only a
mask head needs (``crop_and_resize``, conversion from polygon masks) raises
``NotImplementedError``, and so do the other mask types.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from pycocotools import mask as mask_util

from ..utils.unsupported import unsupported_class, unsupported_function
from .boxes import Boxes

__all__ = ["BitMasks", "PolygonMasks", "ROIMasks", "polygons_to_bitmask"]

_MASKS = "instance segmentation masks"

PolygonMasks = unsupported_class("PolygonMasks", _MASKS, __name__)
ROIMasks = unsupported_class("ROIMasks", _MASKS, __name__)


def polygons_to_bitmask(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterises one instance's polygons (COCO style, flat ``[x0, y0, x1, y1, ...]``).

    Args:
        polygons (list[np.ndarray]): the instance's polygons, each of at least 3 points.
        height (int): mask height.
        width (int): mask width.

    Returns:
        np.ndarray[H, W]: bool mask, True inside any of the polygons.
    """
    if len(polygons) == 0:
        return np.zeros((height, width), dtype=bool)
    flat = [np.asarray(p, dtype=np.float64).ravel() for p in polygons]
    rles = mask_util.frPyObjects(flat, height, width)
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


class BitMasks:
    """N binary masks of one image, stored as a bool ``Tensor[N, H, W]``.

    Attributes:
        tensor (Tensor[N, H, W]): the masks.
        image_size (tuple[int, int]): (H, W).
    """

    def __init__(self, tensor: Tensor | np.ndarray) -> None:
        """
        Args:
            tensor (Tensor[N, H, W] | np.ndarray): the masks; any dtype, read as bool.
        """
        if isinstance(tensor, Tensor):
            tensor = tensor.to(torch.bool)
        else:
            tensor = torch.as_tensor(tensor, dtype=torch.bool, device=torch.device("cpu"))
        assert tensor.dim() == 3, f"BitMasks need an [N, H, W] tensor, got {tuple(tensor.shape)}"
        self.image_size = tuple(tensor.shape[1:])
        self.tensor = tensor

    def to(self, *args: Any, **kwargs: Any) -> BitMasks:
        """Return the masks moved with ``Tensor.to`` arguments."""
        return BitMasks(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        """The device the masks live on."""
        return self.tensor.device

    def __getitem__(self, item: int | slice | Tensor) -> BitMasks:
        """Index with an int, a slice, a bool mask or an index tensor; always returns BitMasks."""
        if isinstance(item, int):
            return BitMasks(self.tensor[item][None])
        masks = self.tensor[item]
        assert masks.dim() == 3, f"Indexing BitMasks with {item} gave shape {tuple(masks.shape)}"
        return BitMasks(masks)

    def __iter__(self) -> Iterator[Tensor]:
        yield from self.tensor

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return f"BitMasks(num_instances={len(self)})"

    def nonempty(self) -> Tensor:
        """Return a ``Tensor[N]`` bool mask of the masks with at least one pixel set."""
        return self.tensor.flatten(1).any(dim=1)

    def get_bounding_boxes(self) -> Boxes:
        """Return the tight XYXY box of every mask; an empty mask gets an all-zero box."""
        boxes = torch.zeros(len(self), 4, dtype=torch.float32)
        columns = self.tensor.any(dim=1)
        rows = self.tensor.any(dim=2)
        for i in range(len(self)):
            xs = torch.nonzero(columns[i], as_tuple=True)[0]
            ys = torch.nonzero(rows[i], as_tuple=True)[0]
            if len(xs) and len(ys):
                boxes[i] = torch.tensor([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], dtype=torch.float32)
        return Boxes(boxes)

    @staticmethod
    def cat(bitmasks_list: list[BitMasks]) -> BitMasks:
        """Concatenate a non-empty list of ``BitMasks`` of the same image size."""
        assert isinstance(bitmasks_list, (list, tuple)) and len(bitmasks_list) > 0
        assert all(isinstance(m, BitMasks) for m in bitmasks_list), "BitMasks.cat takes BitMasks"
        return BitMasks(torch.cat([m.tensor for m in bitmasks_list], dim=0))

    # What only a mask head needs: training targets, rasterised polygons, pasted predictions.
    crop_and_resize = unsupported_function("BitMasks.crop_and_resize", _MASKS, __name__)
    from_polygon_masks = staticmethod(
        unsupported_function("BitMasks.from_polygon_masks", _MASKS, __name__)
    )
    from_roi_masks = staticmethod(unsupported_function("BitMasks.from_roi_masks", _MASKS, __name__))
