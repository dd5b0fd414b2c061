"""Index samplers: infinite shuffled streams for training, a finite ordered shard for inference.

Each process (rank) of a distributed job gets a disjoint share of the indices.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from typing import Iterator

import torch
from torch.utils.data.sampler import Sampler

from ...utils import comm

__all__ = [
    "TrainingSampler",
    "RandomSubsetTrainingSampler",
    "RepeatFactorTrainingSampler",
    "InferenceSampler",
]

logger = logging.getLogger(__name__)


class _InfiniteSampler(Sampler):
    """An endless stream of epochs drawn from one seeded generator, dealt to the ranks in turn.

    Rank r yields the positions r, r + world_size, ... of the shared stream, so the ranks never
    see the same element of it. Subclasses say what one epoch is (``_epoch_indices``).
    """

    def __init__(self, shuffle: bool, seed: int | None) -> None:
        self._shuffle = shuffle
        # Drawn from numpy's global RNG (rank 0's draw), so a run seeded with cfg.SEED gets a
        # reproducible data order.
        self._seed = comm.shared_random_seed() if seed is None else int(seed)
        self._rank, self._world_size = comm.get_rank(), comm.get_world_size()

    @property
    def seed(self) -> int:
        """The shuffle seed."""
        return self._seed

    def state_dict(self) -> dict:
        """Returns ``{"seed": seed}``: the stream depends on it only, so a data loader saves a
        position in it plus this to resume (a resumed run may have drawn another seed)."""
        return {"seed": self._seed}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores the seed of :meth:`state_dict`; the next ``iter()`` replays its stream."""
        self._seed = int(state_dict["seed"])

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self._rank, None, self._world_size)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self._seed)
        while True:
            yield from self._epoch_indices(g).tolist()

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


class TrainingSampler(_InfiniteSampler):
    """An infinite stream of dataset indices, reshuffled each epoch and sharded by rank.

    Rank r yields the positions r, r + world_size, ... of one shared (seeded) stream, so the
    ranks never see the same element of the stream.
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int | None = None) -> None:
        """
        Args:
            size (int): dataset length; must be > 0.
            shuffle (bool): shuffle each epoch. Defaults to True.
            seed (int | None): shuffle seed, the same on all ranks. Defaults to None
                (drawn from numpy's global RNG and shared from rank 0).
        """
        if not isinstance(size, int):
            raise TypeError(f"TrainingSampler(size=...) expects an int, got {type(size)}")
        if size <= 0:
            raise ValueError(f"TrainingSampler(size=...) expects a positive int, got {size}")
        self._size = size
        super().__init__(shuffle, seed)

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        if self._shuffle:
            return torch.randperm(self._size, generator=generator)
        return torch.arange(self._size)


class RandomSubsetTrainingSampler(TrainingSampler):
    """Like ``TrainingSampler``, but over a fixed random subset of the dataset.

    Training on subsets of several sizes shows how accuracy grows with the amount of data.
    """

    def __init__(
        self,
        size: int,
        subset_ratio: float,
        shuffle: bool = True,
        seed_shuffle: int | None = None,
        seed_subset: int | None = None,
    ) -> None:
        """
        Args:
            size (int): dataset length; must be > 0.
            subset_ratio (float): the fraction of the dataset kept, in (0, 1].
            shuffle (bool): shuffle the subset each epoch. Defaults to True.
            seed_shuffle (int | None): shuffle seed, as ``TrainingSampler``'s ``seed``.
                Defaults to None.
            seed_subset (int | None): seed that picks the subset, the same on all ranks.
                Defaults to None (shared random).

        Raises:
            ValueError: if ``subset_ratio`` is outside (0, 1] or keeps no element.
        """
        super().__init__(size, shuffle=shuffle, seed=seed_shuffle)
        subset_size = int(size * subset_ratio)
        if not 0.0 < subset_ratio <= 1.0 or subset_size == 0:
            raise ValueError(
                f"RandomSubsetTrainingSampler: subset_ratio={subset_ratio} of {size} elements "
                f"keeps none, or is outside (0, 1]"
            )
        self._subset_size = subset_size
        self._pick_subset(comm.shared_random_seed() if seed_subset is None else int(seed_subset))
        logger.info(f"RandomSubsetTrainingSampler: sampling {subset_size} of {size} elements")

    def _pick_subset(self, seed_subset: int) -> None:
        self._seed_subset = seed_subset
        g = torch.Generator().manual_seed(seed_subset)
        self._indexes_subset = torch.randperm(self._size, generator=g)[: self._subset_size]

    def state_dict(self) -> dict:
        """Returns ``{"seed": shuffle seed, "seed_subset": subset seed}``."""
        return {**super().state_dict(), "seed_subset": self._seed_subset}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores both seeds, and so the subset too."""
        super().load_state_dict(state_dict)
        self._pick_subset(int(state_dict["seed_subset"]))

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        if self._shuffle:
            return self._indexes_subset[torch.randperm(self._subset_size, generator=generator)]
        return self._indexes_subset


class RepeatFactorTrainingSampler(_InfiniteSampler):
    """Like ``TrainingSampler``, but image i appears ``repeat_factors[i]`` times per epoch on
    average (LVIS-style class balancing): the integer part always, the fraction stochastically.
    """

    def __init__(
        self, repeat_factors: torch.Tensor, *, shuffle: bool = True, seed: int | None = None
    ) -> None:
        """
        Args:
            repeat_factors (Tensor[N]): float repeat factor of each image, >= 0.
            shuffle (bool): shuffle each epoch. Defaults to True.
            seed (int | None): as in ``TrainingSampler``. Defaults to None.
        """
        super().__init__(shuffle, seed)
        repeat_factors = torch.as_tensor(repeat_factors, dtype=torch.float32)
        self._int_part = torch.trunc(repeat_factors)
        self._frac_part = repeat_factors - self._int_part

    @staticmethod
    def repeat_factors_from_category_frequency(
        dataset_dicts: list[dict], repeat_thresh: float, sqrt: bool = True
    ) -> torch.Tensor:
        """Compute each image's repeat factor from how rare its rarest category is.

        For a category in a fraction f of the images, r(c) = max(1, t / f) (or its square root
        with ``sqrt``); an image repeats max over its categories of r(c) times (1 if none).

        Args:
            dataset_dicts (list[dict]): dataset dicts with ``annotations``.
            repeat_thresh (float): the frequency threshold t below which categories repeat.
            sqrt (bool): use the square root of t / f. Defaults to True.

        Returns:
            Tensor[N]: float32 repeat factors.
        """
        category_freq: dict[int, float] = defaultdict(int)
        for d in dataset_dicts:
            for cat_id in {ann["category_id"] for ann in d.get("annotations", [])}:
                category_freq[cat_id] += 1
        num_images = len(dataset_dicts)
        category_rep = {}
        for cat_id, count in category_freq.items():
            ratio = repeat_thresh / (count / num_images)
            category_rep[cat_id] = max(1.0, math.sqrt(ratio) if sqrt else ratio)
        rep_factors = [
            max((category_rep[ann["category_id"]] for ann in d.get("annotations", [])), default=1.0)
            for d in dataset_dicts
        ]
        return torch.tensor(rep_factors, dtype=torch.float32)

    def _get_epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        rands = torch.rand(len(self._frac_part), generator=generator)
        rep_factors = (self._int_part + (rands < self._frac_part).float()).long()
        return torch.repeat_interleave(torch.arange(len(rep_factors)), rep_factors)

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        indices = self._get_epoch_indices(generator)
        if len(indices) == 0:
            raise ValueError("RepeatFactorTrainingSampler: every repeat factor is 0")
        if self._shuffle:
            indices = indices[torch.randperm(len(indices), generator=generator)]
        return indices


class InferenceSampler(Sampler):
    """Every index exactly once, in order, split into contiguous shards by rank.

    Inference needs each image evaluated once; the shards differ by at most one image in size.
    """

    def __init__(self, size: int) -> None:
        """
        Args:
            size (int): dataset length.
        """
        if size < 0:
            raise ValueError(f"InferenceSampler(size=...) expects size >= 0, got {size}")
        self._size = size
        rank, world_size = comm.get_rank(), comm.get_world_size()
        self._local_indices = self._get_local_indices(size, world_size, rank)

    @staticmethod
    def _get_local_indices(total_size: int, world_size: int, rank: int) -> range:
        # The first ``left`` shards take one image more.
        shard_size, left = divmod(total_size, world_size)
        begin = rank * shard_size + min(rank, left)
        return range(begin, begin + shard_size + int(rank < left))

    def __iter__(self) -> Iterator[int]:
        yield from self._local_indices

    def __len__(self) -> int:
        return len(self._local_indices)
