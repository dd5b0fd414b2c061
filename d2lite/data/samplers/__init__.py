"""Samplers yielding dataset indices for training (infinite) and inference (finite)."""

from . import distributed_sampler, grouped_batch_sampler
from .distributed_sampler import *  # noqa: F401,F403
from .grouped_batch_sampler import *  # noqa: F401,F403

__all__ = grouped_batch_sampler.__all__ + distributed_sampler.__all__
