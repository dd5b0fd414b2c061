"""Anchors: reference boxes tiled over every feature map, A of them per location.

L: feature levels, A: anchors per location (sizes x aspect ratios), Hi, Wi: size of the i-th
feature map. Anchors of level i are ordered location-major (row, column), then by anchor, so
they line up with a head output of shape (N, A, Hi, Wi) permuted to (N, Hi, Wi, A).
"""
from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..config import CfgNode, configurable
from ..layers import ShapeSpec
from ..structures import Boxes
from ..utils.unsupported import unsupported_class
from .registry import ANCHOR_GENERATOR_REGISTRY, build_registered

__all__ = [
    "ANCHOR_GENERATOR_REGISTRY",
    "BufferList",
    "DefaultAnchorGenerator",
    "RotatedAnchorGenerator",
    "build_anchor_generator",
]

# Multi-scale training sees a few distinct feature-map sizes; keep the most recent ones (an
# 800x1333 FPN grid is ~3 MB of anchors, so the cache stays small).
_ANCHOR_CACHE_SIZE = 8


class BufferList(nn.Module):
    """A list of tensors registered as non-persistent buffers, so that ``.to()`` moves them but
    they stay out of the state dict (the anchors are recomputed from the config)."""

    def __init__(self, buffers: list[Tensor]) -> None:
        super().__init__()
        for i, buffer in enumerate(buffers):
            self.register_buffer(str(i), buffer, persistent=False)

    def __len__(self) -> int:
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())


def _broadcast_params(params: Sequence, num_features: int, name: str) -> list[list[float]]:
    """Turns ``[a, b]`` or ``[[a, b]]`` into one list per feature map."""
    if not isinstance(params, Sequence) or len(params) == 0:
        raise ValueError(f"Anchor {name} must be a non-empty list, got {params!r}")
    if not isinstance(params[0], Sequence):
        return [list(params)] * num_features
    if len(params) == 1:
        return [list(params[0])] * num_features
    if len(params) != num_features:
        raise ValueError(
            f"Anchor {name} has {len(params)} lists but there are {num_features} feature maps; "
            "give one list per feature map or a single list for all of them"
        )
    return [list(p) for p in params]


def generate_cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> Tensor:
    """Returns Tensor[len(sizes) * len(aspect_ratios), 4]: XYXY anchors centred at (0, 0).

    An anchor of size s and ratio r = h / w has area s**2, so w = sqrt(s**2 / r), h = r * w.
    Sizes vary slowest.
    """
    anchors = []
    for size in sizes:
        area = size**2.0
        for aspect_ratio in aspect_ratios:
            w = math.sqrt(area / aspect_ratio)
            h = aspect_ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors, dtype=torch.float32)


@ANCHOR_GENERATOR_REGISTRY.register()
class DefaultAnchorGenerator(nn.Module):
    """Tiles the same cell anchors at every location of each feature map (stride apart)."""

    box_dim: int = 4

    @configurable
    def __init__(
        self,
        *,
        sizes: Sequence,
        aspect_ratios: Sequence,
        strides: Sequence[int],
        offset: float = 0.5,
    ) -> None:
        """
        Args:
            sizes (list[list[float]] | list[float]): anchor sizes (sqrt of the area, in input
                pixels) per feature map; a single list is used for every map.
            aspect_ratios (list[list[float]] | list[float]): height / width ratios, likewise.
            strides (list[int]): stride of each feature map.
            offset (float): centre of the first anchor, in units of the stride, in [0, 1).
                Defaults to 0.5.
        """
        super().__init__()
        if not 0.0 <= offset < 1.0:
            raise ValueError(f"Anchor offset must be in [0, 1), got {offset}")
        self.strides = list(strides)
        self.num_features = len(self.strides)
        sizes = _broadcast_params(sizes, self.num_features, "sizes")
        aspect_ratios = _broadcast_params(aspect_ratios, self.num_features, "aspect_ratios")
        self.cell_anchors = BufferList(
            [generate_cell_anchors(s, a) for s, a in zip(sizes, aspect_ratios)]
        )
        self.offset = offset
        self._cache: collections.OrderedDict = collections.OrderedDict()

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: list[ShapeSpec]) -> dict:
        return {
            "sizes": cfg.MODEL.ANCHOR_GENERATOR.SIZES,
            "aspect_ratios": cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS,
            "strides": [x.stride for x in input_shape],
            "offset": cfg.MODEL.ANCHOR_GENERATOR.OFFSET,
        }

    @property
    def num_cell_anchors(self) -> list[int]:
        """Alias of :attr:`num_anchors`."""
        return self.num_anchors

    @property
    def num_anchors(self) -> list[int]:
        """A per level: the number of anchors at each location of each feature map."""
        return [len(cell_anchors) for cell_anchors in self.cell_anchors]

    def _grid_anchors(self, grid_sizes: list[tuple[int, int]]) -> list[Tensor]:
        """Returns per level Tensor[Hi * Wi * A, 4]: the cell anchors shifted to every location."""
        anchors = []
        levels = zip(grid_sizes, self.strides, self.cell_anchors)
        for (height, width), stride, base_anchors in levels:
            device = base_anchors.device
            shifts_x = torch.arange(width, dtype=torch.float32, device=device) * stride
            shifts_y = torch.arange(height, dtype=torch.float32, device=device) * stride
            shift_y, shift_x = torch.meshgrid(
                shifts_y + self.offset * stride, shifts_x + self.offset * stride, indexing="ij"
            )
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4))
        return anchors

    def forward(self, features: list[Tensor]) -> list[Boxes]:
        """
        Args:
            features (list[Tensor[N, C, Hi, Wi]]): the feature maps, one per stride.

        Returns:
            list[Boxes]: per level, Hi * Wi * A anchors in XYXY_ABS input coordinates.
        """
        grid_sizes = tuple(tuple(int(s) for s in f.shape[-2:]) for f in features)
        key = (grid_sizes, next(iter(self.cell_anchors)).device)
        # Popped and put back, so the most recently used grid sizes are always last.
        anchors = self._cache.pop(key, None)
        if anchors is None:
            anchors = self._grid_anchors(list(grid_sizes))
        self._cache[key] = anchors
        if len(self._cache) > _ANCHOR_CACHE_SIZE:
            self._cache.popitem(last=False)
        # Fresh Boxes each call: callers may replace a Boxes' tensor, never the cached one.
        return [Boxes(a) for a in anchors]


RotatedAnchorGenerator = unsupported_class(
    "RotatedAnchorGenerator", "rotated anchors", __name__, bases=(nn.Module,)
)
ANCHOR_GENERATOR_REGISTRY.register(RotatedAnchorGenerator)


def build_anchor_generator(cfg: CfgNode, input_shape: list[ShapeSpec]) -> nn.Module:
    """Builds ``cfg.MODEL.ANCHOR_GENERATOR.NAME`` for the features described by ``input_shape``."""
    name = cfg.MODEL.ANCHOR_GENERATOR.NAME
    return build_registered(ANCHOR_GENERATOR_REGISTRY, name, cfg, input_shape)
