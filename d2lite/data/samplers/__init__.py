"""Samplers yielding dataset indices for training (infinite) and inference (finite)."""

from .distributed_sampler import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler

__all__ = ["TrainingSampler", "RepeatFactorTrainingSampler", "InferenceSampler"]
