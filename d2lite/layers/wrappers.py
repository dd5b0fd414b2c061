"""Thin wrappers over torch ops: ``Conv2d`` with norm/activation, and empty-safe helpers.

``BatchNorm2d``, ``ConvTranspose2d``, ``Linear`` and ``interpolate`` are torch's own: current
torch handles empty inputs, which is all Detectron2 once wrapped them for.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .batch_norm import FrozenBatchNorm2d

__all__ = [
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Linear",
    "cat",
    "cross_entropy",
    "empty_input_loss_func_wrapper",
    "interpolate",
    "move_device_like",
    "nonzero_tuple",
    "shapes_to_tensor",
]

BatchNorm2d = nn.BatchNorm2d
ConvTranspose2d = nn.ConvTranspose2d
Linear = nn.Linear
interpolate = F.interpolate


def shapes_to_tensor(x: list[int], device: torch.device | None = None) -> Tensor:
    """Turns a list of sizes (ints or 0-d tensors, as in traced code) into an int64 tensor."""
    if all(isinstance(t, Tensor) for t in x):
        return torch.stack(x).to(device=device)
    return torch.as_tensor(x, device=device)


def cat(tensors: list[Tensor], dim: int = 0) -> Tensor:
    """``torch.cat`` that skips the copy when there is a single tensor.

    Args:
        tensors (list[Tensor]): at least one tensor.
        dim (int): dimension to concatenate. Defaults to 0.
    """
    assert isinstance(tensors, (list, tuple)), f"cat expects a list, got {type(tensors)}"
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def nonzero_tuple(x: Tensor) -> tuple[Tensor, ...]:
    """``x.nonzero(as_tuple=True)``, also correct for 0-d inputs (treated as 1-d)."""
    if x.dim() == 0:
        return x.unsqueeze(0).nonzero(as_tuple=True)
    return x.nonzero(as_tuple=True)


def move_device_like(src: Tensor, dst: Tensor) -> Tensor:
    """Returns ``src`` on the device of ``dst``."""
    return src.to(dst.device)


def empty_input_loss_func_wrapper(loss_func: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Makes a ``loss_func(input, target, *, reduction, **kwargs)`` return 0 for no targets.

    A mean over zero elements is NaN, which would poison training when an image yields no
    sampled proposals. The 0 is ``input.sum() * 0``, connected to the graph so that backward
    still runs. Other reductions, and non-empty targets, call ``loss_func`` unchanged.

    Args:
        loss_func (Callable): e.g. ``F.cross_entropy``.
    """

    def wrapped(input: Tensor, target: Tensor, *, reduction: str = "mean", **kwargs) -> Tensor:
        if target.numel() == 0 and reduction == "mean":
            return input.sum() * 0.0
        return loss_func(input, target, reduction=reduction, **kwargs)

    wrapped.__name__ = wrapped.__qualname__ = getattr(loss_func, "__name__", "wrapped")
    wrapped.__doc__ = f"``{wrapped.__name__}`` that returns 0 (not NaN) for an empty batch."
    return wrapped


#: ``F.cross_entropy(input (Tensor[R, K]), target (Tensor[R]))``, 0 for R == 0.
cross_entropy = empty_input_loss_func_wrapper(F.cross_entropy)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by an optional normalization and activation.

    The normalization is the child module ``norm``, so its parameters are saved as
    ``<conv>.norm.weight`` etc., the names Detectron2 checkpoints use.
    """

    #: Fold a ``FrozenBatchNorm2d`` norm into the convolution in ``forward`` (same outputs up to
    #: float rounding). False runs the norm as a separate op: the reference it is tested against.
    fold_frozen_bn: bool = True

    def __init__(
        self,
        *args,
        norm: nn.Module | None = None,
        activation: Callable[[Tensor], Tensor] | None = None,
        **kwargs,
    ) -> None:
        """Takes ``nn.Conv2d``'s arguments plus:

        Args:
            norm (nn.Module | None): applied after the convolution. Defaults to None.
            activation (Callable | None): applied after the norm. Defaults to None.
        """
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        """Maps ``x (Tensor[N, Cin, H, W])`` to ``Tensor[N, Cout, H', W']``."""
        if x.numel() == 0 and self.training:
            # SyncBatchNorm hangs on empty inputs instead of failing, so fail loudly here.
            assert not isinstance(
                self.norm, nn.SyncBatchNorm
            ), "SyncBatchNorm does not support empty inputs!"
        if self.fold_frozen_bn and isinstance(self.norm, FrozenBatchNorm2d):
            # A frozen BN is a per-channel affine map, so it folds into the conv's weight and
            # bias: that costs a pass over the weights instead of two over the activations
            # (and one more in backward). The norm's buffers are left as they are.
            scale, shift = self.norm.scale_and_shift()
            weight = self.weight * scale.view(-1, 1, 1, 1).to(self.weight.dtype)
            bias = shift if self.bias is None else self.bias * scale + shift
            x = self._conv_forward(x, weight, bias.to(self.weight.dtype))
        else:
            x = self._conv_forward(x, self.weight, self.bias)
            if self.norm is not None:
                x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
