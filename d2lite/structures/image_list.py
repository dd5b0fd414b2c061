"""``ImageList``: images of different sizes padded into one batch tensor.

N: images in the batch, C: channels, H, W: padded height and width.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ImageList"]


class ImageList:
    """A padded batch of images that remembers each image's real size.

    Attributes:
        tensor (Tensor[N, C, H, W]): the padded images.
        image_sizes (list[tuple[int, int]]): (height, width) of each image before padding.
    """

    def __init__(self, tensor: Tensor, image_sizes: list[tuple[int, int]]) -> None:
        """
        Args:
            tensor (Tensor[N, C, H, W]): the padded images.
            image_sizes (list[tuple[int, int]]): (height, width) of each unpadded image.
        """
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx: int) -> Tensor:
        """Return image ``idx`` without its padding, as a ``Tensor[C, h, w]``."""
        size = self.image_sizes[idx]
        return self.tensor[idx, ..., : size[0], : size[1]]

    def to(self, *args: Any, **kwargs: Any) -> ImageList:
        """Return the batch moved/cast with ``Tensor.to`` arguments."""
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self) -> torch.device:
        """The device of the batch tensor."""
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors: Sequence[Tensor],
        size_divisibility: int = 0,
        pad_value: float = 0.0,
        padding_constraints: dict[str, int] | None = None,
    ) -> ImageList:
        """Pad images to a common size and stack them.

        Args:
            tensors (Sequence[Tensor[..., Hi, Wi]]): the images, e.g. ``Tensor[C, Hi, Wi]`` each.
            size_divisibility (int): if > 1, round the padded height and width up to a multiple
                of it (FPN backbones need sizes divisible by their largest stride). Defaults to 0.
            pad_value (float): value of the padding. Defaults to 0.0.
            padding_constraints (dict[str, int] | None): a backbone's ``padding_constraints``;
                its ``"size_divisibility"`` overrides ``size_divisibility`` and a positive
                ``"square_size"`` pads every image to that square (then rounded up to the
                divisibility). Defaults to None.

        Returns:
            ImageList: the padded batch.
        """
        assert len(tensors) > 0, "ImageList.from_tensors needs at least one image"
        assert isinstance(tensors, (tuple, list)), f"Expected a list of images, got {type(tensors)}"
        for t in tensors:
            assert isinstance(t, Tensor), f"Expected Tensor images, got {type(t)}"
            assert (
                t.shape[:-2] == tensors[0].shape[:-2]
            ), f"Images differ in leading dims: {tuple(t.shape)} vs {tuple(tensors[0].shape)}"
        image_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        max_size = [max(s[0] for s in image_sizes), max(s[1] for s in image_sizes)]

        if padding_constraints is not None:
            if padding_constraints.get("square_size", 0) > 0:
                max_size = [padding_constraints["square_size"]] * 2
            size_divisibility = padding_constraints.get("size_divisibility", size_divisibility)
        # After the square size, as in Detectron2: a square that is not a multiple grows to one.
        if size_divisibility > 1:
            stride = size_divisibility
            max_size = [math.ceil(s / stride) * stride for s in max_size]

        if len(tensors) == 1:
            # One image: F.pad avoids allocating and copying a second full-size buffer.
            h, w = image_sizes[0]
            padding = [0, max_size[1] - w, 0, max_size[0] - h]
            batched = F.pad(tensors[0], padding, value=pad_value).unsqueeze_(0)
        else:
            shape = [len(tensors)] + list(tensors[0].shape[:-2]) + max_size
            batched = tensors[0].new_full(shape, pad_value)
            for img, pad_img in zip(tensors, batched):
                pad_img[..., : img.shape[-2], : img.shape[-1]].copy_(img)
        return ImageList(batched.contiguous(), image_sizes)
