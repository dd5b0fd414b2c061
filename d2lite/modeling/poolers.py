"""ROI pooling over a feature pyramid: each box is pooled from the level that suits its size.

N: images, M: boxes over the whole batch, C: channels, L: pyramid levels, S: output size.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchvision.ops import RoIPool

from ..layers import ROIAlign
from ..structures import Boxes

__all__ = ["ROIPooler", "assign_boxes_to_levels", "convert_boxes_to_pooler_format"]


def assign_boxes_to_levels(
    box_lists: list[Boxes],
    min_level: int,
    max_level: int,
    canonical_box_size: int,
    canonical_level: int,
) -> Tensor:
    """Picks the pyramid level of every box (eq. 1 of the FPN paper).

    A box of size ``canonical_box_size`` (sqrt of its area) goes to ``canonical_level``; each
    doubling of the size moves it one level up.

    Args:
        box_lists (list[Boxes]): the boxes of each image, M in total.
        min_level (int): finest level (e.g. 2 for P2).
        max_level (int): coarsest level.
        canonical_box_size (int): box size that maps to ``canonical_level``.
        canonical_level (int): level of the canonical box size.

    Returns:
        Tensor[M]: int64 level index of each box, relative to ``min_level``.
    """
    box_sizes = torch.sqrt(torch.cat([boxes.area() for boxes in box_lists]))
    # The 1e-8 keeps log2 finite for degenerate (zero-area) boxes.
    level_assignments = torch.floor(
        canonical_level + torch.log2(box_sizes / canonical_box_size + 1e-8)
    )
    level_assignments = torch.clamp(level_assignments, min=min_level, max=max_level)
    return level_assignments.to(torch.int64) - min_level


def convert_boxes_to_pooler_format(box_lists: list[Boxes]) -> Tensor:
    """Returns Tensor[M, 5]: rows (image index, x0, y0, x1, y1), the format of torchvision's ROI
    ops, for the boxes of every image in order."""
    boxes = torch.cat([b.tensor for b in box_lists], dim=0)
    sizes = torch.tensor([len(b) for b in box_lists], device=boxes.device)
    indices = torch.repeat_interleave(
        torch.arange(len(box_lists), dtype=boxes.dtype, device=boxes.device), sizes
    )
    return torch.cat([indices[:, None], boxes], dim=1)


def _make_level_pooler(
    pooler_type: str, output_size: tuple[int, int], scale: float, sampling_ratio: int
) -> nn.Module:
    if pooler_type in ("ROIAlignV2", "ROIAlign"):
        # ROIAlignV2 (aligned=True) shifts boxes by half a pixel so that samples fall on pixel
        # centres; plain ROIAlign keeps the legacy misalignment of older checkpoints.
        return ROIAlign(
            output_size,
            spatial_scale=scale,
            sampling_ratio=sampling_ratio,
            aligned=pooler_type == "ROIAlignV2",
        )
    if pooler_type == "ROIPool":
        return RoIPool(output_size, spatial_scale=scale)
    raise ValueError(
        f"Unknown pooler type '{pooler_type}'; expected ROIAlignV2, ROIAlign or ROIPool"
    )


class ROIPooler(nn.Module):
    """Pools a fixed-size feature for each box from a list of feature maps (finest first)."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        scales: list[float],
        sampling_ratio: int,
        pooler_type: str,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ) -> None:
        """
        Args:
            output_size (int | tuple[int, int]): size S (or (h, w)) of the pooled features.
            scales (list[float]): 1 / stride of each feature map, finest first; the strides
                must be consecutive powers of two.
            sampling_ratio (int): sampling points per output bin of ROIAlign; 0 is adaptive.
            pooler_type (str): "ROIAlignV2", "ROIAlign" or "ROIPool".
            canonical_box_size (int): box size mapped to ``canonical_level``. Defaults to 224
                (the ImageNet crop size).
            canonical_level (int): Defaults to 4 (the level of the ResNet C4 features).
        """
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        assert len(output_size) == 2 and all(isinstance(s, int) for s in output_size), output_size
        self.output_size = tuple(output_size)
        self.level_poolers = nn.ModuleList(
            _make_level_pooler(pooler_type, self.output_size, s, sampling_ratio) for s in scales
        )
        min_level = -math.log2(scales[0])
        max_level = -math.log2(scales[-1])
        if not all(math.isclose(lvl, round(lvl)) for lvl in (min_level, max_level)):
            raise ValueError(f"ROIPooler scales must be powers of 1/2, got {list(scales)}")
        self.min_level, self.max_level = int(round(min_level)), int(round(max_level))
        if len(scales) != self.max_level - self.min_level + 1:
            raise ValueError(
                f"ROIPooler scales must be consecutive pyramid levels, got {list(scales)}"
            )
        assert canonical_box_size > 0, canonical_box_size
        self.canonical_level = canonical_level
        self.canonical_box_size = canonical_box_size

    def forward(self, x: list[Tensor], box_lists: list[Boxes]) -> Tensor:
        """
        Args:
            x (list[Tensor[N, C, Hi, Wi]]): feature maps, one per level of ``scales``.
            box_lists (list[Boxes]): N lists of boxes in input coordinates, M boxes in total.

        Returns:
            Tensor[M, C, S, S]: the pooled features, in the order of the boxes.
        """
        assert isinstance(x, list) and len(x) == len(self.level_poolers), (
            f"ROIPooler has {len(self.level_poolers)} levels but got {len(x)} feature maps"
        )
        assert len(box_lists) == x[0].size(0), (
            f"{len(box_lists)} box lists for a batch of {x[0].size(0)} feature maps"
        )
        num_channels = x[0].shape[1]
        if len(box_lists) == 0:
            return x[0].new_zeros((0, num_channels) + self.output_size)
        pooler_fmt_boxes = convert_boxes_to_pooler_format(box_lists)
        if len(self.level_poolers) == 1:
            return self.level_poolers[0](x[0], pooler_fmt_boxes)
        level_assignments = assign_boxes_to_levels(
            box_lists, self.min_level, self.max_level, self.canonical_box_size, self.canonical_level
        )
        output = x[0].new_zeros((len(pooler_fmt_boxes), num_channels) + self.output_size)
        for level, pooler in enumerate(self.level_poolers):
            inds = torch.nonzero(level_assignments == level, as_tuple=True)[0]
            pooled = pooler(x[level], pooler_fmt_boxes[inds])
            output.index_put_((inds,), pooled.to(output.dtype))
        return output
