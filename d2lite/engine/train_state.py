"""The state of a training run besides the model and optimizer: what a checkpoint holds for a
resumed run to be the uninterrupted one (the random state of the process, since a model may
draw from the global RNGs, e.g. in dropout; the data loader's place in its stream), and what
a hook that runs the model (evaluation, validation, precise BN) must leave as it found it
(the RNGs, the BatchNorm statistics).

The saved states are tensors, numbers and lists only: they load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

__all__ = [
    "NO_RNG_STATE",
    "get_rng_state",
    "set_rng_state",
    "restore_rng_state",
    "fork_rng",
    "get_data_loader_state",
    "load_data_loader_state",
    "bn_modules_in_training",
    "frozen_bn",
]

logger = logging.getLogger(__name__)

# Stands for the RNG state of a checkpoint saved before d2lite saved one.
NO_RNG_STATE = "no RNG state"


def get_rng_state() -> dict[str, Any]:
    """Returns the states of Python's, numpy's and torch's global RNGs (and CUDA's, when in use).

    Returns:
        dict: ``{"python", "numpy", "torch"[, "cuda"]}``, for :func:`set_rng_state`.
    """
    version, internal, gauss_next = random.getstate()
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss_next],
        # int64: uint32 tensors support too few operations to be safe to keep around.
        "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gaussian],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`get_rng_state` returned. CUDA states are restored when the process
    sees as many devices as the saving one did."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    keys, pos, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(
        ("MT19937", keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached_gaussian)
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


def restore_rng_state(state: dict | str | None) -> None:
    """Restores ``state``; None (nothing was loaded) does nothing, and ``NO_RNG_STATE`` warns
    that the random streams restart."""
    if state == NO_RNG_STATE:
        logger.warning(
            "The checkpoint holds no RNG state (saved by an older d2lite): the random streams "
            "of the training restart from the seed."
        )
    elif state is not None:
        set_rng_state(state)


@contextlib.contextmanager
def fork_rng() -> Iterator[None]:
    """Restores every global RNG after the block, so that what runs inside (an evaluation, a
    validation pass) leaves the training's random streams as they were."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def get_data_loader_state(data_loader: Any) -> dict | None:
    """Returns the loader's position in its data stream, or None if it cannot save one (see
    ``AspectRatioGroupedDataset.state_dict``; a torch ``DataLoader`` cannot)."""
    state_dict = getattr(data_loader, "state_dict", None)
    return state_dict() if callable(state_dict) else None


def load_data_loader_state(data_loader: Any, state: dict | None) -> bool:
    """Loads ``state`` (None: the checkpoint has none) into the loader if both allow, else
    warns that the data order restarts. Returns whether it was loaded."""
    load = getattr(data_loader, "load_state_dict", None)
    if state is not None and callable(load):
        load(state)
        return True
    if state is not None:
        logger.warning(
            "The checkpoint holds a data loader position, but the data loader (a %s) cannot "
            "load it: the data order restarts from the beginning.",
            type(data_loader).__name__,
        )
    elif get_data_loader_state(data_loader) is not None:
        logger.warning(
            "The checkpoint holds no data loader position (saved by an older d2lite): the data "
            "order restarts from the beginning."
        )
    return False


def bn_modules_in_training(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``model`` in training mode (whose statistics a forward updates)."""
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
    ]


@contextlib.contextmanager
def frozen_bn(model: nn.Module) -> Iterator[None]:
    """Puts BatchNorm layers in eval mode, so a training-mode forward leaves their stats alone."""
    bns = bn_modules_in_training(model)
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()
