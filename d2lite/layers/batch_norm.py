"""Normalization layers: ``FrozenBatchNorm2d`` and the ``get_norm`` factory used by every conv.

N: images in the batch, C: channels, H, W: spatial size.
"""
from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["FrozenBatchNorm2d", "get_norm"]

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
            return frozen.to(device=_module_device(module))
        for name, child in module.named_children():
            new_child = cls.convert_frozen_batchnorm(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module


def _module_device(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "BN": nn.BatchNorm2d,
    # Detectron2 has its own SyncBN; torch's does the same job (and falls back to BN on 1 process
    # only inside DDP), so both names map to it.
    "SyncBN": nn.SyncBatchNorm,
    "nnSyncBN": nn.SyncBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": lambda channels: nn.GroupNorm(32, channels),
}


def get_norm(norm: str | Callable[[int], nn.Module] | None, out_channels: int) -> nn.Module | None:
    """Builds the normalization layer named by ``norm`` for ``out_channels`` channels.

    Args:
        norm (str | Callable | None): one of "BN", "SyncBN", "nnSyncBN", "FrozenBN", "GN" (32
            groups), "" or None (no normalization), or a callable taking the channel count.
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
