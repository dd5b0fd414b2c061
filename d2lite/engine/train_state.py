"""The random state of the training process, saved in checkpoints so a resumed run draws the
same numbers (RPN and ROI label sampling use torch's global RNG) as the uninterrupted one.

The state is stored as tensors, numbers and lists only: it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["get_rng_state", "set_rng_state", "fork_rng"]


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


@contextlib.contextmanager
def fork_rng() -> Iterator[None]:
    """Restores every global RNG after the block, so that what runs inside (an evaluation, a
    validation pass) leaves the training's random streams as they were."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
