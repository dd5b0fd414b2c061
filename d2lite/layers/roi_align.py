"""``ROIAlign`` as a module over ``torchvision.ops.roi_align``, with the boxes split over threads
on the CPU.

K: boxes over the batch, C: channels, M: output size, T: threads.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
import torchvision  # noqa: F401  (registers torch.ops.torchvision)
from torch import Tensor, nn
from torch.nn.modules.utils import _pair
from torchvision.ops import roi_align

__all__ = ["ROIAlign"]

# Below this many boxes per thread, the thread hand-off costs more than it saves.
_MIN_BOXES_PER_THREAD = 64
_pool: dict[int, ThreadPoolExecutor] = {}


def _thread_pool(num_threads: int) -> ThreadPoolExecutor:
    if num_threads not in _pool:
        _pool[num_threads] = ThreadPoolExecutor(num_threads, thread_name_prefix="d2lite_roi_align")
    return _pool[num_threads]


def _chunks(num_boxes: int) -> list[slice]:
    """Splits K boxes into T contiguous ranges, or returns one range when splitting won't pay."""
    threads = min(torch.get_num_threads(), num_boxes // _MIN_BOXES_PER_THREAD)
    if threads < 2:
        return [slice(0, num_boxes)]
    bounds = [num_boxes * i // threads for i in range(threads + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


class _ParallelROIAlign(torch.autograd.Function):
    """torchvision's CPU ROIAlign kernels are single-threaded, and release the GIL: running them
    on T slices of the boxes at once gives each output box exactly the same values, and the
    input gradient is the sum of the T slices' gradients."""

    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.save_for_backward(rois)
        ctx.params = (output_size, spatial_scale, sampling_ratio, aligned, input.shape)
        op = torch.ops.torchvision.roi_align
        args = (spatial_scale, output_size[0], output_size[1], sampling_ratio, aligned)
        parts = _chunks(rois.shape[0])
        input = input.contiguous()
        outs = _thread_pool(len(parts)).map(lambda s: op(input, rois[s], *args), parts)
        return torch.cat(list(outs))

    @staticmethod
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        output_size, spatial_scale, sampling_ratio, aligned, (n, c, h, w) = ctx.params
        op = torch.ops.torchvision._roi_align_backward
        args = (spatial_scale, output_size[0], output_size[1], n, c, h, w, sampling_ratio, aligned)
        parts = _chunks(rois.shape[0])
        grads = list(
            _thread_pool(len(parts)).map(
                lambda s: op(grad_output[s].contiguous(), rois[s], *args), parts
            )
        )
        # In place: one feature-map-sized buffer fewer at the peak than sum().
        grad_input = grads[0]
        for grad in grads[1:]:
            grad_input += grad
        return grad_input, None, None, None, None, None


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
        rois = rois.to(dtype=input.dtype)
        args = (_pair(self.output_size), self.spatial_scale, self.sampling_ratio, self.aligned)
        # Autocast is thread-local, so the worker threads would not see it: keep it on one call.
        threaded = input.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        if threaded and input.dtype == torch.float32 and len(_chunks(rois.shape[0])) > 1:
            return _ParallelROIAlign.apply(input, rois.contiguous(), *args)
        return roi_align(input, rois, *args)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
