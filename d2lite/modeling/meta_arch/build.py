"""``build_model``, the registry it reads, and the device the model goes to."""
from __future__ import annotations

import logging

import torch
from torch import nn

from ...config import CfgNode
from ...layers import flush_denormals
from ..registry import META_ARCH_REGISTRY, build_registered

__all__ = ["META_ARCH_REGISTRY", "build_model", "resolve_device"]

logger = logging.getLogger(__name__)

_warned_devices: set[str] = set()


def resolve_device(device: str | torch.device) -> torch.device:
    """Returns the torch device for a ``MODEL.DEVICE`` value.

    A CUDA device requested on a machine without CUDA falls back to the CPU with one warning
    (per requested device), so the same config runs on a laptop and on a GPU server.

    Args:
        device (str | torch.device): e.g. "cpu", "cuda", "cuda:1".

    Raises:
        ValueError: if ``device`` is not a device string torch understands.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"MODEL.DEVICE={device!r} is not a valid torch device: {e}") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        if str(device) not in _warned_devices:
            _warned_devices.add(str(device))
            logger.warning(f"MODEL.DEVICE={device!r} but CUDA is not available; using the CPU.")
        return torch.device("cpu")
    return resolved


def build_model(cfg: CfgNode) -> nn.Module:
    """Builds ``cfg.MODEL.META_ARCHITECTURE`` and moves it to ``cfg.MODEL.DEVICE``.

    The weights are freshly initialised; load a checkpoint with ``DetectionCheckpointer``.
    """
    model = build_registered(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, cfg)
    device = resolve_device(cfg.MODEL.DEVICE)
    model.to(device)
    if device.type == "cpu" and cfg.MODEL.FLUSH_DENORMAL:
        flush_denormals(True)
    # No "Model:" dump here (Detectron2 has none either): DefaultTrainer writes it to model.txt
    # and log.txt once, where it printed once per model built (4 times in the demo).
    return model
