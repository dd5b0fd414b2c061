"""Dataset wrappers between the list of dicts and the ``DataLoader``."""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import pickle
import random
from typing import Any, Callable, Iterable, Iterator

import cloudpickle  # pickles lambdas and closures (a mapper written inline)
import numpy as np
import torch
import torch.utils.data as data
from torch.utils.data.sampler import Sampler

from ..utils import comm

__all__ = [
    "DatasetFromList",
    "MapDataset",
    "ToIterableDataset",
    "AspectRatioGroupedDataset",
    "set_default_dataset_from_list_serialize_method",
]

logger = logging.getLogger(__name__)


class _PicklableWrapper:
    """Hold a callable so that it survives pickling even when it is a lambda or a closure.

    Spawned ``DataLoader`` workers (and ``pickle`` generally) cannot pickle a lambda mapper;
    cloudpickle can, so the wrapper pickles itself through it.
    """

    def __init__(self, obj: Callable) -> None:
        while isinstance(obj, _PicklableWrapper):  # never wrap twice
            obj = obj._obj
        self._obj = obj

    def __reduce__(self) -> tuple:
        return _unpickle_wrapped, (cloudpickle.dumps(self._obj),)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._obj(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Reached only for names the wrapper lacks: let it stand in for the callable.
        if name == "_obj":
            raise AttributeError(name)
        return getattr(self._obj, name)


def _unpickle_wrapped(payload: bytes) -> _PicklableWrapper:
    # Wrapped again, so that the restored object can itself be pickled once more. The payload
    # is what __reduce__ made in this process or its parent (DataLoader workers), never a file.
    return _PicklableWrapper(cloudpickle.loads(payload))


class _TorchSerializedList:
    """A read-only list whose items are pickled into one flat uint8 tensor.

    A python list of dicts is touched by every access (reference counts), so each forked
    ``DataLoader`` worker slowly copies the whole dataset; one tensor buffer is shared instead
    (by the fork, or through shared memory with spawn).
    """

    def __init__(self, lst: list) -> None:
        logger.info(f"Serializing {len(lst)} elements into one byte tensor ...")
        blobs = [np.frombuffer(pickle.dumps(x, protocol=-1), dtype=np.uint8) for x in lst]
        self._ends = torch.from_numpy(np.cumsum([len(b) for b in blobs], dtype=np.int64))
        self._buffer = torch.from_numpy(np.concatenate(blobs) if blobs else np.zeros(0, np.uint8))
        logger.info(f"The serialized dataset takes {len(self._buffer) / 1024**2:.2f} MiB")

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, idx: int) -> Any:
        start = 0 if idx == 0 else int(self._ends[idx - 1])
        end = int(self._ends[idx])
        # Bytes pickled in __init__ above (in this process or the one that forked it).
        return pickle.loads(memoryview(self._buffer[start:end].numpy()))


# What DatasetFromList(serialize=True) uses; replace it for a block with the context manager.
_DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD: Callable[[list], Any] = _TorchSerializedList


@contextlib.contextmanager
def set_default_dataset_from_list_serialize_method(new: Callable[[list], Any]) -> Iterator[None]:
    """Within the block, ``DatasetFromList(serialize=True)`` stores its list as ``new(lst)``.

    Args:
        new (Callable[[list], Any]): takes the list, returns an indexable object with ``len``.
    """
    global _DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD
    previous = _DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD
    _DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD = new
    try:
        yield
    finally:
        _DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD = previous


class DatasetFromList(data.Dataset):
    """A map-style dataset over a ``list`` (of dataset dicts)."""

    def __init__(
        self, lst: list, copy: bool = True, serialize: bool | Callable[[list], Any] = True
    ) -> None:
        """
        Args:
            lst (list): the elements.
            copy (bool): return a deep copy of each element, so a mapper that edits its input
                in place cannot corrupt the dataset. Serialized storage returns fresh objects
                anyway, so it matters only with ``serialize=False``. Defaults to True.
            serialize (bool | Callable): store the list in a compact form that worker
                processes share: True uses the default method (one pickled byte tensor, see
                ``set_default_dataset_from_list_serialize_method``), a callable is used as the
                method, False keeps the list. Defaults to True.

        Raises:
            TypeError: if ``serialize`` is neither a bool nor a callable.
        """
        if not isinstance(serialize, bool) and not callable(serialize):
            raise TypeError(f"DatasetFromList(serialize=...) takes a bool or callable: {serialize}")
        self._copy = copy
        self._serialize = serialize is not False
        if self._serialize:
            method = _DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD if serialize is True else serialize
            logger.info(f"Serializing the dataset with {method}")
            lst = method(lst)
        self._lst = lst

    def __len__(self) -> int:
        return len(self._lst)

    def __getitem__(self, idx: int) -> Any:
        if self._copy and not self._serialize:
            return copy.deepcopy(self._lst[idx])
        return self._lst[idx]


class _MapIterableDataset(data.IterableDataset):
    """Apply ``map_func`` to each element of an iterable dataset, skipping None results."""

    def __init__(self, dataset: Iterable, map_func: Callable[[Any], Any]) -> None:
        self._dataset = dataset
        self._map_func = _PicklableWrapper(map_func)

    def __len__(self) -> int:
        return len(self._dataset)

    def __iter__(self) -> Iterator[Any]:
        for x in map(self._map_func, self._dataset):
            if x is not None:
                yield x

    def state_dict(self) -> dict | None:
        """The wrapped dataset's position (see ``AspectRatioGroupedDataset.state_dict``)."""
        inner = getattr(self._dataset, "state_dict", None)
        return inner() if callable(inner) else None

    def load_state_dict(self, state_dict: dict) -> None:
        self._dataset.load_state_dict(state_dict)


class MapDataset(data.Dataset):
    """Apply ``map_func`` to each element of a dataset.

    A ``map_func`` returning None means "skip this element": for a map-style dataset another
    random element is tried instead, as Detectron2 does, so a mapper can reject an image whose
    boxes were all cropped away; for an iterable dataset (then ``MapDataset`` returns an
    iterable dataset too) the element is simply skipped. A lambda ``map_func`` pickles.
    """

    def __new__(cls, dataset: Any, map_func: Callable[[Any], Any]) -> Any:
        if isinstance(dataset, data.IterableDataset):
            return _MapIterableDataset(dataset, map_func)
        return super().__new__(cls)

    def __init__(self, dataset: data.Dataset, map_func: Callable[[Any], Any]) -> None:
        """
        Args:
            dataset (Dataset): a map-style or iterable dataset.
            map_func (Callable): e.g. a ``DatasetMapper``; may return None to skip an element.
        """
        self._dataset = dataset
        self._map_func = _PicklableWrapper(map_func)
        self._rng = random.Random(42)
        self._fallback_candidates = set(range(len(dataset)))

    def __getnewargs__(self) -> tuple:
        # Unpickling calls __new__ with these, which needs them to pick the class.
        return self._dataset, self._map_func

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int) -> Any:
        cur_idx = int(idx)
        for retry_count in itertools.count(1):
            result = self._map_func(self._dataset[cur_idx])
            if result is not None:
                self._fallback_candidates.add(cur_idx)
                return result
            self._fallback_candidates.discard(cur_idx)
            if not self._fallback_candidates:
                raise RuntimeError("The mapper returned None for every element of the dataset")
            cur_idx = self._rng.choice(list(self._fallback_candidates))
            if retry_count >= 3:
                logger.warning(f"Failed to apply the mapper to index {idx}; tried {retry_count}")


def _shard_for_dataloader_worker(iterable: Iterable, chunk_size: int = 1) -> Iterator:
    """Inside a ``DataLoader`` worker, keep only this worker's share of ``iterable``.

    The stream is cut into chunks of ``chunk_size`` consecutive elements, dealt to the workers
    in turn: worker k keeps chunks k, k + num_workers, ... Outside a worker (or with one
    worker) everything is kept.
    """
    info = data.get_worker_info()
    if info is None or info.num_workers == 1:
        yield from iterable
        return
    for position, item in enumerate(iterable):
        if (position // chunk_size) % info.num_workers == info.id:
            yield item


def _at_positions(indices: Iterator[int], positions: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Yields ``(position, index)`` for the given increasing positions of ``indices``."""
    current = 0  # the position of the next element of ``indices``
    for position in positions:
        if position > current:
            # islice skips in C: a resume late in a long run replays millions of indices.
            next(itertools.islice(indices, position - current, position - current), None)
        index = next(indices, None)
        if index is None:
            return
        current = position + 1
        yield position, index


@contextlib.contextmanager
def _seeded_rngs(seed: int) -> Iterator[None]:
    """Seeds Python's, numpy's and torch's (CPU) RNGs for the block. In the main process they
    are restored after it: the model's streams must not depend on the data."""
    # A worker's RNGs serve the data only, and saving numpy's costs 0.1 ms an image.
    saved = None
    if data.get_worker_info() is None:
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)  # not torch.manual_seed: it reseeds CUDA too
    try:
        yield
    finally:
        if saved is not None:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class ToIterableDataset(data.IterableDataset):
    """Turn a map-style dataset plus an index sampler into an iterable dataset.

    Every ``DataLoader`` worker runs its own copy of the sampler; with ``shard_sampler`` each
    keeps only its share (see ``shard_chunk_size``), so together the workers produce each
    sampled index once. ``DataLoader`` collects the workers' outputs in turn, so with a batch
    size equal to ``shard_chunk_size`` the batches follow the sampler's order exactly.

    With a ``seed``, the element at position p of rank r (of W) is made with the RNGs seeded
    from (seed, p * W + r), its place in the global stream that d2lite's samplers deal out to
    the ranks in turn: its augmentation depends on that place only, not on the worker mapping
    it, on what came before, or on the number of processes, so the stream can restart anywhere
    (``load_state_dict``) and 2 processes of batch 1 see what 1 process of batch 2 sees.

    Attributes:
        start (int): the first position produced after ``replay``. Defaults to 0.
        replay (list[int]): earlier positions produced first, in increasing order (the images a
            consumer held back when its state was saved). Defaults to [].
    """

    def __init__(
        self,
        dataset: data.Dataset,
        sampler: Sampler,
        shard_sampler: bool = True,
        shard_chunk_size: int = 1,
        *,
        seed: int | None = None,
    ) -> None:
        """
        Args:
            dataset (Dataset): a map-style dataset.
            sampler (Sampler): a cheap iterable of indices into ``dataset``.
            shard_sampler (bool): split the sampler's output among ``DataLoader`` workers. Set
                it to False for a sampler that already shards by worker. Defaults to True.
            shard_chunk_size (int): consecutive indices each worker takes at a time.
                Defaults to 1.
            seed (int | None): seed each element's RNGs from this (the same on all ranks)
                and the element's place in the global stream. Defaults to None (elements use
                the process's RNGs, as in Detectron2).
        """
        assert not isinstance(dataset, data.IterableDataset), f"Not map-style: {dataset}"
        assert isinstance(sampler, Sampler), f"Not a Sampler: {sampler}"
        self.dataset = dataset
        self.sampler = sampler
        self.shard_sampler = shard_sampler
        self.shard_chunk_size = shard_chunk_size
        self.seed = seed
        # Taken here, in the main process: the ranks share the seed, not their streams.
        self._rank, self._world_size = comm.get_rank(), comm.get_world_size()
        self.start = 0
        self.replay: list[int] = []

    def positions(self) -> Iterator[int]:
        """The stream positions ``__iter__`` produces, in order: ``replay``, then ``start``..."""
        yield from self.replay
        yield from itertools.count(self.start)

    def __iter__(self) -> Iterator[Any]:
        stream: Iterable[tuple[int, int]] = _at_positions(iter(self.sampler), self.positions())
        if self.shard_sampler:
            stream = _shard_for_dataloader_worker(stream, self.shard_chunk_size)
        for position, idx in stream:
            if self.seed is None:
                yield self.dataset[idx]
                continue
            entropy = [self.seed, position * self._world_size + self._rank]
            element_seed = np.random.SeedSequence(entropy).generate_state(1)[0]
            with _seeded_rngs(int(element_seed)):
                item = self.dataset[idx]
            yield item  # outside the block: the consumer runs with its own RNG state

    def __len__(self) -> int:
        return len(self.sampler)

    @property
    def resumable(self) -> bool:
        """Whether a restart reproduces the stream: a seed, and a sampler with a state."""
        return self.seed is not None and callable(getattr(self.sampler, "state_dict", None))

    def state_after(self, received: int, held: Iterable[int] = ()) -> dict:
        """Returns ``{"start", "replay", "seed", "sampler"}`` to continue where a consumer
        stands that took ``received`` elements of a pass and has not used those at positions
        ``held`` yet (a restart produces them again first)."""
        assert self.resumable, "state_after() needs a seed and a sampler with state_dict()"
        replay = self.replay[received:] + list(held)
        start = self.start + max(0, received - len(self.replay))
        return {
            "start": start,
            "replay": sorted(replay),
            "seed": self.seed,
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Makes the next ``iter()`` continue the stream that :meth:`state_after` described."""
        self.start = int(state_dict["start"])
        self.replay = [int(p) for p in state_dict["replay"]]
        self.seed = int(state_dict["seed"])
        self.sampler.load_state_dict(state_dict["sampler"])


class AspectRatioGroupedDataset(data.IterableDataset):
    """Batch elements so that each batch holds only landscape or only portrait images.

    Padding a batch to its largest image wastes less memory and compute when all images are
    oriented the same way.

    Fed by a resumable ``ToIterableDataset`` (``stream``), it saves its position in that
    stream (``state_dict``), including the images its buckets hold back, so a restarted run
    gets the same next batches.
    """

    def __init__(
        self, dataset: Iterable[dict], batch_size: int, *, stream: ToIterableDataset | None = None
    ) -> None:
        """
        Args:
            dataset (Iterable[dict]): yields mapped dicts with ``width`` and ``height``.
            batch_size (int): images per batch.
            stream (ToIterableDataset | None): the stream ``dataset`` yields, one element per
                position (e.g. through a ``DataLoader`` of batch size 1). Defaults to None
                (no ``state_dict``).
        """
        self.dataset = dataset
        self.batch_size = batch_size
        self.stream = stream
        # Two groups: width > height, and the rest.
        self._buckets: list[list[dict]] = [[], []]
        # The stream positions of the bucketed elements, and how many were received.
        self._held: list[list[int]] = [[], []]
        self._received = 0

    def __iter__(self) -> Iterator[list[dict]]:
        self._received = 0
        positions = self.stream.positions() if self.stream is not None else itertools.count()
        for position, d in zip(positions, self.dataset):
            self._received += 1
            group = 0 if d["width"] > d["height"] else 1
            bucket, held = self._buckets[group], self._held[group]
            bucket.append(d)
            held.append(position)
            if len(bucket) == self.batch_size:
                batch = bucket[:]
                # Emptied before the yield: a consumer that stops iterating never resumes
                # this frame, and a full bucket left behind would grow on the next pass.
                del bucket[:], held[:]
                yield batch

    def state_dict(self) -> dict | None:
        """Returns the state to continue after the last batch yielded, or None without a
        resumable ``stream``."""
        if self.stream is None or not self.stream.resumable:
            return None
        return self.stream.state_after(self._received, itertools.chain(*self._held))

    def load_state_dict(self, state_dict: dict) -> None:
        """Makes the next ``iter()`` continue where :meth:`state_dict` was taken."""
        if self.stream is None:
            raise ValueError("AspectRatioGroupedDataset without a stream cannot load a state")
        self.stream.load_state_dict(state_dict)
        for bucket, held in zip(self._buckets, self._held):
            del bucket[:], held[:]
        self._received = 0
