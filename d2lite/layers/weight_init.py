"""Caffe2-style weight initialisers (Detectron2's ``c2_msra_fill`` / ``c2_xavier_fill``).

Written here rather than imported from ``fvcore.nn``: importing that package compiles its losses
with TorchScript, which costs seconds and prints a deprecation warning on every ``import d2lite``.
"""
from __future__ import annotations

from torch import nn

__all__ = ["c2_msra_fill", "c2_xavier_fill"]


def c2_msra_fill(module: nn.Module) -> None:
    """He (MSRA) normal init, fan-out, for ReLU nets; bias zero. Caffe2's "MSRAFill"."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_xavier_fill(module: nn.Module) -> None:
    """Caffe2's "XavierFill": uniform in +-sqrt(3 / fan_in), i.e. kaiming_uniform with a=1; bias zero."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
