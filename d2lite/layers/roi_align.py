"""``ROIAlign`` as a module: torchvision's kernel, or on the CPU the same sampling computed as two
small matrix products per box.

K: boxes over the batch, N: images, C: channels, H, W: feature-map size, P: pooled bins along one
axis (output height or width), G: sample points per bin along that axis, S: rows (or columns) of
the feature map a box's samples touch.

ROIAlign averages G_h x G_w bilinear samples per output bin. A bilinear sample is a product of a
weight along y and a weight along x, and the sample grid is a product of a grid along y and one
along x, so for one box and one channel the output is ``Ay @ F @ Ax.T``: ``Ay (P_h x S_h)`` holds
the y weights summed over each bin's samples, ``Ax (P_w x S_w)`` the x weights, and ``F`` is the
``S_h x S_w`` window of the feature map under the box. On a channels_last feature map the window
of all channels is a strided matrix that a GEMM reads in place, so each box costs two small
GEMMs. torchvision's CPU kernels gather every sample channel by channel on one thread; measured
here they were 3-5x slower in the forward and over 10x slower in the backward.
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import torch
import torchvision  # noqa: F401  (registers torch.ops.torchvision)
from torch import Tensor, nn
from torch.nn.modules.utils import _pair
from torchvision.ops import roi_align

# roi_align is torchvision's function, which Detectron2 also exports from this module.
__all__ = ["ROIAlign", "roi_align"]

# With fewer channels the per-box GEMMs are too small to repay the Python loop over the boxes:
# the 64-channel R18-FPN demo model trained at 0.79 s/iteration with them, 0.75 s without.
_MIN_SEPARABLE_CHANNELS = 128
# Below this many boxes per thread, splitting the boxes over threads costs more than it saves.
_MIN_BOXES_PER_THREAD = 16


def _axis_samples(
    start: Tensor, extent: Tensor, pooled: int, grid: Tensor, size: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample positions of torchvision's ROIAlign along one axis, as (low, high) neighbours.

    Args:
        start, extent (Tensor[K]): box start and length on this axis, in feature-map pixels.
        pooled (int): bins P along the axis.
        grid (Tensor[K]): int64 samples per bin G (may be <= 0: no samples).
        size (int): feature-map length along the axis.

    Returns:
        low, high (Tensor[K, P, G]): int64 indices of the two neighbours of every sample;
        w_low, w_high (Tensor[K, P, G]): their weights, already divided by G and zero for
        samples outside the grid or outside the map.
    """
    g = grid.clamp(min=1).to(start.dtype)[:, None, None]
    bin_size = (extent / pooled)[:, None, None]
    p = torch.arange(pooled, dtype=start.dtype, device=start.device)[None, :, None]
    i = torch.arange(max(int(grid.max()), 1), dtype=start.dtype, device=start.device)
    # The same expression, in the same order, as the kernel's sample coordinate.
    pos = start[:, None, None] + p * bin_size + (i + 0.5) * bin_size / g
    inside = (i < grid[:, None, None]) & (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.to(torch.int64)
    at_end = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(pos), pos - low.to(pos.dtype))
    scale = inside.to(pos.dtype) / g
    return low, high, (1 - frac) * scale, frac * scale


def _axis_matrix(
    start: Tensor, extent: Tensor, pooled: int, grid: Tensor, size: int
) -> tuple[Tensor, list[int], list[int]]:
    """The per-box interpolation matrices along one axis, over the window each box touches.

    Returns:
        Tensor[K, P, S]: weights of the window's rows (columns) for every bin, S the largest
        window over the boxes (a box's own window is its first ``span`` entries).
        list[int]: first row (column) of each box's window.
        list[int]: window length of each box; 0 when no sample falls on the map.
    """
    low, high, w_low, w_high = _axis_samples(start, extent, pooled, grid, size)
    used = (w_low != 0) | (w_high != 0)
    first = torch.where(used, low, size).amin(dim=(1, 2))
    last = torch.where(used, high, -1).amax(dim=(1, 2))
    span = (last - first + 1).clamp(min=0)
    first = first.clamp(max=size - 1)
    k = start.shape[0]
    s = max(int(span.max()), 1)
    matrix = start.new_zeros((k, pooled, s))
    # Samples that no weight uses may index outside the window: clamped, they add zeros.
    offset = first[:, None, None]
    matrix.scatter_add_(2, (low - offset).clamp(0, s - 1), w_low)
    matrix.scatter_add_(2, (high - offset).clamp(0, s - 1), w_high)
    return matrix, first.tolist(), span.tolist()


def _roi_matrices(rois: Tensor, feature_hw: tuple[int, int], params: tuple) -> tuple:
    """Ay, Ax and the windows of every box, following torchvision's ROIAlign conventions."""
    (pooled_h, pooled_w), spatial_scale, sampling_ratio, aligned = params
    offset = 0.5 if aligned else 0.0
    x0 = rois[:, 1] * spatial_scale - offset
    y0 = rois[:, 2] * spatial_scale - offset
    width = rois[:, 3] * spatial_scale - offset - x0
    height = rois[:, 4] * spatial_scale - offset - y0
    if not aligned:
        # The legacy ROIAlign stretches boxes smaller than one pixel to one pixel.
        width, height = width.clamp(min=1.0), height.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full_like(rois[:, 0], sampling_ratio, dtype=torch.int64)
    else:
        grid_h = torch.ceil(height / pooled_h).to(torch.int64)
        grid_w = torch.ceil(width / pooled_w).to(torch.int64)
    ay, y_first, y_span = _axis_matrix(y0, height, pooled_h, grid_h, feature_hw[0])
    ax, x_first, x_span = _axis_matrix(x0, width, pooled_w, grid_w, feature_hw[1])
    batch = rois[:, 0].to(torch.int64).tolist()
    return ay, ax, list(zip(batch, y_first, y_span, x_first, x_span))


def _pool_boxes(features: Tensor, ay: Tensor, ax: Tensor, windows: list, out: Tensor, part):
    """Forward of the boxes ``part`` (a range): ``out[k] = Ay_k @ window_k @ Ax_k.T``."""
    pooled_h, c = ay.shape[1], features.shape[-1]
    for k in part:
        b, y, sy, x, sx = windows[k]
        if sy == 0 or sx == 0:
            out[k] = 0  # no sample falls on the map
            continue
        window = features[b, y : y + sy, x : x + sx].view(sy, sx * c)
        rows = torch.mm(ay[k, :, :sy], window).view(pooled_h, sx, c)
        torch.matmul(ax[k, :, :sx], rows, out=out[k])


def _scatter_boxes(grad: Tensor, ay: Tensor, ax: Tensor, windows: list, grad_features: Tensor,
                   band: tuple[int, int]):
    """Backward into the feature-map rows ``band`` = [start, stop) of every box's window.

    Threads own disjoint bands, so none writes where another does; every element sums its
    boxes' gradients in box order, each computed whole, as one thread owning all rows would:
    the result does not depend on the number of threads.
    """
    pooled_h, c = ay.shape[1], grad_features.shape[-1]
    for k, (b, y, sy, x, sx) in enumerate(windows):
        top, bottom = max(y, band[0]), min(y + sy, band[1])
        if sy == 0 or sx == 0 or top >= bottom:
            continue
        cols = torch.matmul(ax[k, :, :sx].t(), grad[k]).view(pooled_h, sx * c)
        # The whole product, then the band's rows: a product of only those rows rounds
        # differently (BLAS picks its kernel by shape), and the result would depend on the
        # thread count (the bit-for-bit test fails). A box over two bands pays its GEMM twice.
        box_grad = torch.mm(ay[k, :, :sy].t(), cols)[top - y : bottom - y]
        grad_features[b, top:bottom, x : x + sx].view(bottom - top, sx * c).add_(box_grad)


def _run_split(fn, parts: list) -> None:
    """Runs ``fn(part)`` for every part, on as many threads as torch's intra-op pool has, each
    computing single-threaded. A few hundred small GEMMs per thread instead of thousands of
    parallel regions: each region ends in a barrier, and beside other CPU work a barrier waits
    until a descheduled thread runs again (measured: 45x slower inference)."""
    threads = len(parts)
    if threads == 1:
        fn(parts[0])
        return

    # Grad and inference modes are per thread: the workers take the caller's (no autograd in
    # here; an inference-mode caller's tensors may only be written in inference mode).
    inference = torch.is_inference_mode_enabled()

    def run(part) -> None:
        torch.set_num_threads(1)  # OpenMP's thread count is per thread too
        with torch.inference_mode() if inference else torch.no_grad():
            fn(part)

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        list(_executor(threads).map(run, parts))
    finally:
        torch.set_num_threads(previous)


@functools.cache
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="d2lite-roialign")


# A forked child (e.g. a data-loader worker) has none of its parent's threads.
os.register_at_fork(after_in_child=_executor.cache_clear)


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) in ``parts`` contiguous ranges of near-equal length."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _threads(num_boxes: int) -> int:
    return max(1, min(torch.get_num_threads(), num_boxes // _MIN_BOXES_PER_THREAD))


class _SeparableROIAlign(torch.autograd.Function):
    """ROIAlign as ``Ay @ F @ Ax.T`` per box (see the module docstring), forward and backward."""

    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, *params) -> Tensor:
        _, c, h, w = input.shape
        ay, ax, windows = _roi_matrices(rois, (h, w), params)
        pooled_h, pooled_w = params[0]
        # [N, H, W, C] with C contiguous: every window is then a strided (S_h, S_w * C) matrix.
        features = input.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
        output = input.new_empty((len(windows), pooled_h, pooled_w, c))
        parts = [range(*r) for r in _split(len(windows), _threads(len(windows)))]
        _run_split(lambda part: _pool_boxes(features, ay, ax, windows, output, part), parts)
        ctx.save_for_backward(ay, ax)
        ctx.windows = windows
        ctx.input_shape = input.shape
        ctx.channels_last = input.is_contiguous(memory_format=torch.channels_last)
        return output.permute(0, 3, 1, 2)

    @staticmethod
    @torch.autocast("cpu", enabled=False)
    def backward(ctx, grad_output: Tensor):
        ay, ax = ctx.saved_tensors
        n, c, h, w = ctx.input_shape
        grad = grad_output.permute(0, 2, 3, 1).contiguous()
        grad_features = grad.new_zeros((n, h, w, c))
        bands = _split(h, min(_threads(len(ctx.windows)), h))
        _run_split(
            lambda band: _scatter_boxes(grad, ay, ax, ctx.windows, grad_features, band), bands
        )
        grad_input = grad_features.permute(0, 3, 1, 2)
        if not ctx.channels_last:
            grad_input = grad_input.contiguous()
        return grad_input, None, None, None, None, None


def _separable_applies(input: Tensor, rois: Tensor) -> bool:
    """The per-box GEMMs pay on the CPU for wide feature maps; CUDA's kernel is parallel
    already. Boxes with NaN or inf coordinates, whose sample grids have no meaningful size, keep
    torchvision's kernel."""
    if input.device.type != "cpu" or rois.shape[0] == 0:
        return False
    if input.shape[1] < _MIN_SEPARABLE_CHANNELS:
        return False
    floating = input.dtype in (torch.float32, torch.float64)
    autocast = torch.is_autocast_enabled("cpu") and input.dtype in (torch.bfloat16, torch.float16)
    return (floating or autocast) and bool(torch.isfinite(rois).all())


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
        args = (_pair(self.output_size), self.spatial_scale, self.sampling_ratio, self.aligned)
        if not _separable_applies(input, rois):
            return roi_align(input, rois.to(dtype=input.dtype), *args)
        dtype = input.dtype
        if dtype not in (torch.float32, torch.float64):
            # Autocast features: pool in float32 from float32 boxes, as torchvision's autocast
            # wrapper does, and hand back the features' dtype.
            input = input.float()
        with torch.autocast("cpu", enabled=False):
            output = _SeparableROIAlign.apply(input, rois.to(dtype=input.dtype), *args)
        return output.to(dtype)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
