"""Dataset wrappers between the list of dicts and the ``DataLoader``."""

from __future__ import annotations

import copy
import itertools
import logging
import random
from typing import Any, Callable, Iterable, Iterator

import torch.utils.data as data
from torch.utils.data.sampler import Sampler

__all__ = ["DatasetFromList", "MapDataset", "ToIterableDataset", "AspectRatioGroupedDataset"]

logger = logging.getLogger(__name__)


class DatasetFromList(data.Dataset):
    """A map-style dataset over a ``list`` (of dataset dicts)."""

    def __init__(self, lst: list, copy: bool = True) -> None:
        """
        Args:
            lst (list): the elements.
            copy (bool): return a deep copy of each element, so a mapper that edits its input
                in place cannot corrupt the dataset. Defaults to True.
        """
        self._lst = lst
        self._copy = copy

    def __len__(self) -> int:
        return len(self._lst)

    def __getitem__(self, idx: int) -> Any:
        return copy.deepcopy(self._lst[idx]) if self._copy else self._lst[idx]


class _MapIterableDataset(data.IterableDataset):
    """Apply ``map_func`` to each element of an iterable dataset, skipping None results."""

    def __init__(self, dataset: Iterable, map_func: Callable[[Any], Any]) -> None:
        self._dataset = dataset
        self._map_func = map_func

    def __iter__(self) -> Iterator[Any]:
        for x in map(self._map_func, self._dataset):
            if x is not None:
                yield x


class MapDataset(data.Dataset):
    """Apply ``map_func`` to each element of a dataset.

    A ``map_func`` returning None means "skip this element": for a map-style dataset another
    random element is tried instead, as Detectron2 does, so a mapper can reject an image whose
    boxes were all cropped away; for an iterable dataset the element is simply skipped.
    """

    def __new__(cls, dataset: Any = None, map_func: Callable[[Any], Any] | None = None) -> Any:
        # The defaults let pickle (spawned DataLoader workers) recreate the object bare.
        if isinstance(dataset, data.IterableDataset):
            return _MapIterableDataset(dataset, map_func)
        return super().__new__(cls)

    def __init__(self, dataset: data.Dataset, map_func: Callable[[Any], Any]) -> None:
        """
        Args:
            dataset (Dataset): a map-style dataset.
            map_func (Callable): e.g. a ``DatasetMapper``.
        """
        self._dataset = dataset
        self._map_func = map_func
        self._rng = random.Random(42)
        self._fallback_candidates = set(range(len(dataset)))

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int) -> Any:
        retry_count = 0
        cur_idx = int(idx)
        while True:
            result = self._map_func(self._dataset[cur_idx])
            if result is not None:
                self._fallback_candidates.add(cur_idx)
                return result
            retry_count += 1
            self._fallback_candidates.discard(cur_idx)
            if not self._fallback_candidates:
                raise RuntimeError("The mapper returned None for every element of the dataset")
            cur_idx = self._rng.choice(sorted(self._fallback_candidates))
            if retry_count >= 3:
                logger.warning(f"Failed to apply the mapper to index {idx}; tried {retry_count}")


class ToIterableDataset(data.IterableDataset):
    """Turn a map-style dataset plus an (infinite) sampler into an iterable dataset.

    With ``DataLoader`` workers, worker k takes positions k, k + num_workers, ... of the
    sampler's stream, so the workers together produce each sampled index once.
    """

    def __init__(self, dataset: data.Dataset, sampler: Sampler) -> None:
        self.dataset = dataset
        self.sampler = sampler

    def __iter__(self) -> Iterator[Any]:
        worker_info = data.get_worker_info()
        indices: Iterable[int] = iter(self.sampler)
        if worker_info is not None and worker_info.num_workers > 1:
            indices = itertools.islice(indices, worker_info.id, None, worker_info.num_workers)
        for idx in indices:
            yield self.dataset[idx]


class AspectRatioGroupedDataset(data.IterableDataset):
    """Batch elements so that each batch holds only landscape or only portrait images.

    Padding a batch to its largest image wastes less memory and compute when all images are
    oriented the same way.
    """

    def __init__(self, dataset: Iterable[dict], batch_size: int) -> None:
        """
        Args:
            dataset (Iterable[dict]): yields mapped dicts with ``width`` and ``height``.
            batch_size (int): images per batch.
        """
        self.dataset = dataset
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[dict]]:
        buckets: list[list[dict]] = [[], []]
        for d in self.dataset:
            bucket = buckets[0 if d["width"] > d["height"] else 1]
            bucket.append(d)
            if len(bucket) == self.batch_size:
                batch = bucket[:]
                del bucket[:]
                yield batch
