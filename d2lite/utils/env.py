"""Environment helpers: RNG seeding and the torch version."""

from __future__ import annotations

import logging
import os
import random
from datetime import datetime

import numpy as np
import torch

__all__ = ["seed_all_rng", "TORCH_VERSION"]

# (major, minor) of the installed torch, for version-dependent code paths.
TORCH_VERSION = tuple(int(x) for x in torch.__version__.split(".")[:2])

logger = logging.getLogger(__name__)


def seed_all_rng(seed: int | None = None) -> int:
    """Seeds the RNGs of torch, numpy and Python's ``random``.

    Args:
        seed (int | None): the seed; None draws one from the pid, clock and OS entropy and logs
            it, so a run can be repeated. Defaults to None.

    Returns:
        int: the seed used.
    """
    if seed is None:
        seed = (
            os.getpid()
            + int(datetime.now().strftime("%S%f"))
            + int.from_bytes(os.urandom(2), "big")
        )
        logger.info("Using a generated random seed %d", seed)
    # numpy accepts seeds below 2**32 only.
    seed = int(seed) % 2**32
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed
