from __future__ import annotations

import random

import numpy as np
import torch

from d2lite.utils.env import TORCH_VERSION, seed_all_rng


def test_seed_all_rng_is_reproducible():
    assert seed_all_rng(7) == 7
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_all_rng(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert 0 <= seed_all_rng(None) < 2**32
    assert len(TORCH_VERSION) == 2 and TORCH_VERSION >= (2, 0)
