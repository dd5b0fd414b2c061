"""Normalization layers and the ``get_norm`` factory used by every conv.

N: images in the batch, C: channels, H, W: spatial size.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from d2lite.utils import comm

__all__ = [
    "CycleBatchNormList",
    "FrozenBatchNorm2d",
    "LayerNorm",
    "NaiveSyncBatchNorm",
    "get_norm",
]

logger = logging.getLogger(__name__)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers.

    Pretrained ImageNet backbones are fine-tuned with tiny per-GPU batches, where batch statistics
    are too noisy to update; freezing them turns BN into a per-channel affine map. The four
    buffers keep BatchNorm2d's names (``weight``, ``bias``, ``running_mean``, ``running_var``)
    so Detectron2 and torchvision checkpoints load unchanged.

    Args:
        num_features (int): channels C.
        eps (float): added to the variance. Defaults to 1e-5.
    """

    # Version 2 added running_mean/var, version 3 moved eps out of the stored running_var.
    _version = 3

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        # Minus eps so that a freshly built layer is exactly the identity.
        self.register_buffer("running_var", torch.ones(num_features) - eps)
        # An empty slot, as in Detectron2: a layer converted from BatchNorm2d keeps its
        # counter, so its state dict has the same keys in both libraries.
        self.register_buffer("num_batches_tracked", None)

    def scale_and_shift(self) -> tuple[Tensor, Tensor]:
        """Returns the per-channel ``scale`` and ``shift`` (Tensor[C] each) the layer applies."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        """Applies ``x * scale + shift`` per channel to ``x (Tensor[N, C, H, W])``."""
        scale, shift = self.scale_and_shift()
        # Cast to the input dtype so the layer also works under fp16 autocast.
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            # Old (and Caffe2-converted) checkpoints store only the affine part, with the
            # statistics already folded in, so identity statistics reproduce them exactly.
            if prefix + "running_mean" not in state_dict:
                state_dict[prefix + "running_mean"] = torch.zeros_like(self.running_mean)
            if prefix + "running_var" not in state_dict:
                state_dict[prefix + "running_var"] = torch.ones_like(self.running_var)
        if version is not None and version < 3:
            # Version 2 applied running_var without adding eps; keep its outputs unchanged.
            logger.info(f"FrozenBatchNorm {prefix.rstrip('.')} is upgraded to version 3.")
            state_dict[prefix + "running_var"] = state_dict[prefix + "running_var"] - self.eps
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, eps={self.eps}"

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Returns ``module`` with every BatchNorm2d / SyncBatchNorm replaced by a frozen copy.

        Args:
            module (nn.Module): a module that may contain batch-norm layers; it is changed in
                place, and returned (a new object if ``module`` itself is a batch norm).
        """
        if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            frozen = cls(module.num_features, eps=module.eps)
            if module.affine:
                frozen.weight.copy_(module.weight.detach())
                frozen.bias.copy_(module.bias.detach())
            if module.track_running_stats:
                frozen.running_mean.copy_(module.running_mean)
                frozen.running_var.copy_(module.running_var)
                frozen.num_batches_tracked = module.num_batches_tracked.detach().clone()
            return frozen.to(device=_module_device(module))
        return _convert_children(module, cls.convert_frozen_batchnorm)


    @classmethod
    def convert_frozenbatchnorm2d_to_batchnorm2d(cls, module: nn.Module) -> nn.Module:
        """The inverse of :meth:`convert_frozen_batchnorm`: frozen layers become BatchNorm2d.

        Quantization and fine-tuning tools expect trainable ``nn.BatchNorm2d`` layers.

        Args:
            module (nn.Module): changed in place and returned (a new object if ``module``
                itself is a ``FrozenBatchNorm2d``).
        """
        if isinstance(module, FrozenBatchNorm2d):
            bn = nn.BatchNorm2d(module.num_features, module.eps)
            with torch.no_grad():
                bn.weight.copy_(module.weight)
                bn.bias.copy_(module.bias)
                bn.running_mean.copy_(module.running_mean)
                bn.running_var.copy_(module.running_var)
            if module.num_batches_tracked is not None:
                bn.num_batches_tracked.copy_(module.num_batches_tracked)
            return bn.to(device=_module_device(module))
        return _convert_children(module, cls.convert_frozenbatchnorm2d_to_batchnorm2d)


def _convert_children(module: nn.Module, convert: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """Replaces, in place, every child of ``module`` that ``convert`` returns anew."""
    for name, child in module.named_children():
        new_child = convert(child)
        if new_child is not child:
            module.add_module(name, new_child)
    return module


def _module_device(module: nn.Module) -> torch.device:
    tensors = itertools.chain(module.parameters(), module.buffers())
    return next((t.device for t in tensors), torch.device("cpu"))


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class NaiveSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are averaged over all processes.

    A slower alternative to ``nn.SyncBatchNorm`` that also runs where that one does not. With
    ``stats_mode=""`` every process counts equally, which gives the true statistics only when
    all have the same (N, H, W), and an empty batch is an error. With ``stats_mode="N"``
    processes are weighted by their batch size N, so empty batches are allowed. Outside
    distributed training, or in eval mode, it is a plain BatchNorm2d.

    Args:
        *args, **kwargs: as for ``nn.BatchNorm2d``.
        stats_mode (str): "" or "N". Defaults to "".
    """

    def __init__(self, *args: Any, stats_mode: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if stats_mode not in ("", "N"):
            raise ValueError(f"stats_mode must be '' or 'N', got {stats_mode!r}")
        self._stats_mode = stats_mode

    def forward(self, input: Tensor) -> Tensor:
        """Normalizes ``input (Tensor[N, C, H, W])`` with the statistics of all processes."""
        if comm.get_world_size() == 1 or not self.training:
            return super().forward(input)
        out_dtype = input.dtype
        # fp16 loses too much in the sum of squares.
        x = input.float() if out_dtype == torch.float16 else input
        mean, mean_sq, momentum = self._global_moments(x)
        var = mean_sq - mean * mean
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        self.running_mean += momentum * (mean.detach() - self.running_mean)
        self.running_var += momentum * (var.detach() - self.running_var)
        out = x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
        return out.to(out_dtype)

    def _global_moments(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | float]:
        """Per-channel E[x] and E[x^2] over all processes, and the running-stats momentum."""
        batch, channels = x.shape[:2]
        if self._stats_mode == "":
            assert batch > 0, 'NaiveSyncBatchNorm(stats_mode="") does not support empty batches'
            local = torch.cat([x.mean(dim=[0, 2, 3]), (x * x).mean(dim=[0, 2, 3])])
            total = _AllReduceSum.apply(local) / comm.get_world_size()
            mean, mean_sq = total.split(channels)
            return mean, mean_sq, self.momentum
        if batch == 0:
            # Zeros that still depend on x, so that backward reaches every process's input.
            local = x.new_zeros(2 * channels + 1) + x.sum()
        else:
            local = torch.cat([x.mean(dim=[0, 2, 3]), (x * x).mean(dim=[0, 2, 3]), x.new_ones(1)])
        total = _AllReduceSum.apply(local * batch)
        count = total[-1].detach()
        # No images anywhere: leave the running statistics alone and divide by 1.
        momentum = count.clamp(max=1) * self.momentum
        mean, mean_sq, _ = (total / count.clamp(min=1)).split(channels)
        return mean, mean_sq, momentum


class CycleBatchNormList(nn.ModuleList):
    """``length`` batch norms used in turn, one per call, for inputs from different domains.

    Each domain (e.g. each FPN level sharing one head) keeps its own statistics; the affine
    weight and bias are shared. The caller must call it a multiple of ``length`` times per
    iteration, or the statistics of the domains get mixed up.

    Args:
        length (int): number of batch norms to cycle through.
        bn_class (type): the batch-norm class. Defaults to ``nn.BatchNorm2d``.
        **kwargs: arguments of ``bn_class`` (e.g. ``num_features``); ``affine`` (default True)
            applies to the shared affine map instead.
    """

    def __init__(self, length: int, bn_class: type = nn.BatchNorm2d, **kwargs: Any) -> None:
        self._affine = kwargs.pop("affine", True)
        super().__init__([bn_class(**kwargs, affine=False) for _ in range(length)])
        if self._affine:
            channels = self[0].num_features
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        self._pos = 0

    def forward(self, x: Tensor) -> Tensor:
        """Normalizes ``x (Tensor[N, C, H, W])`` with the next batch norm of the cycle."""
        out = self[self._pos](x)
        self._pos = (self._pos + 1) % len(self)
        if not self._affine:
            return out
        return out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"affine={self._affine}"


class LayerNorm(nn.Module):
    """LayerNorm over the channels of each position of ``x (Tensor[N, C, H, W])`` (ConvNeXt's).

    Args:
        normalized_shape (int): channels C.
        eps (float): added to the variance. Defaults to 1e-6.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.normalized_shape = (normalized_shape,)

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "BN": nn.BatchNorm2d,
    # torch's SyncBatchNorm has been correct for unequal batch sizes since torch 1.6, so
    # Detectron2 uses it for "SyncBN" there; "nnSyncBN" names it directly.
    "SyncBN": nn.SyncBatchNorm,
    "nnSyncBN": nn.SyncBatchNorm,
    "naiveSyncBN": NaiveSyncBatchNorm,
    "naiveSyncBN_N": lambda channels: NaiveSyncBatchNorm(channels, stats_mode="N"),
    "FrozenBN": FrozenBatchNorm2d,
    "GN": lambda channels: nn.GroupNorm(32, channels),
    "LN": LayerNorm,
}


def get_norm(norm: str | Callable[[int], nn.Module] | None, out_channels: int) -> nn.Module | None:
    """Builds the normalization layer named by ``norm`` for ``out_channels`` channels.

    Args:
        norm (str | Callable | None): one of "BN", "SyncBN", "nnSyncBN", "naiveSyncBN",
            "naiveSyncBN_N" (statistics weighted by batch size), "FrozenBN", "GN" (32 groups),
            "LN" (channel LayerNorm), "" or None (no normalization), or a callable taking the
            channel count.
        out_channels (int): channels to normalize.

    Returns:
        nn.Module | None: the layer, or None when ``norm`` is empty.
    """
    if norm is None or norm == "":
        return None
    if isinstance(norm, str):
        if norm not in _NORMS:
            raise ValueError(f"Unknown norm {norm!r}; expected one of {sorted(_NORMS)} or ''.")
        norm = _NORMS[norm]
    return norm(out_channels)
