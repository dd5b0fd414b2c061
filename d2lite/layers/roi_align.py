"""``ROIAlign`` as a module over ``torchvision.ops.roi_align``.

K: boxes over the batch, C: channels, M: output size.
"""
from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops import roi_align

__all__ = ["ROIAlign"]


class ROIAlign(nn.Module):
    """Bilinear crop-and-resize of box regions to a fixed size.

    Args:
        output_size (int | tuple[int, int]): output (h, w).
        spatial_scale (float): feature-map size / image size (1 / stride).
        sampling_ratio (int): samples per bin side; 0 = adaptive (ceil(box / output)).
        aligned (bool): shift boxes by -0.5 pixel so that sample points sit on pixel centres;
            False reproduces the misaligned Detectron/Caffe2 ROIAlign. Defaults to True.
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = True,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """Pools ``rois (Tensor[K, 5])`` (batch index, x0, y0, x1, y1) from ``input (Tensor[N, C,
        H, W])`` into ``Tensor[K, C, M, M]``."""
        assert rois.dim() == 2 and rois.size(1) == 5, f"rois must be (K, 5), got {rois.shape}"
        if input.is_quantized:
            input = input.dequantize()
        return roi_align(
            input,
            rois.to(dtype=input.dtype),
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            self.aligned,
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
