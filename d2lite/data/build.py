"""Build the training and test data loaders from registered datasets.

Training: dataset dicts -> ``MapDataset`` (mapper) -> infinite sampler -> workers ->
aspect-ratio grouped ``list[dict]`` batches. Test: one image per batch, each exactly once.
Both builders take a config (``build_detection_train_loader(cfg)``) or explicit arguments
(``build_detection_train_loader(dataset, mapper=..., total_batch_size=...)``); see
``d2lite.config.configurable``.
"""

from __future__ import annotations

import functools
import logging
import operator
from typing import Any, Callable, Sequence

import torch
import torch.utils.data as torchdata

from ..config import CfgNode, configurable
from ..utils import comm
from ..utils.env import seed_all_rng
from .common import AspectRatioGroupedDataset, DatasetFromList, MapDataset, ToIterableDataset
from .dataset_mapper import DatasetMapper
from .dataset_dicts import (
    check_num_classes,
    filter_images_with_few_keypoints,
    filter_images_with_only_crowd_annotations,
    get_detection_dataset_dicts,
    load_proposals_into_dataset,
    print_instances_class_histogram,
)
from .samplers import (
    InferenceSampler,
    RandomSubsetTrainingSampler,
    RepeatFactorTrainingSampler,
    TrainingSampler,
)

__all__ = [
    "build_batch_data_loader",
    "build_detection_train_loader",
    "build_detection_test_loader",
    "filter_images_with_few_keypoints",
    "filter_images_with_only_crowd_annotations",
    "get_detection_dataset_dicts",
    "load_proposals_into_dataset",
    "print_instances_class_histogram",
    "trivial_batch_collator",
    "worker_init_reset_seed",
]

logger = logging.getLogger(__name__)


def trivial_batch_collator(batch: list) -> list:
    """Return the batch unchanged: d2lite batches are ``list[dict]``."""
    return batch


def _seed_worker(worker_id: int, base_seed: int | None = None, rank: int = 0) -> None:
    # Workers run the mapper only; one thread each keeps them from stealing the trainer's cores.
    torch.set_num_threads(1)
    if base_seed is None:
        # torch already gives every worker a distinct seed derived from the main process RNG.
        seed = torch.initial_seed() % 2**31
    else:
        # The sampler seed is shared by all ranks; mixing in the rank keeps their
        # augmentations independent while staying reproducible.
        seed = (base_seed + 1009 * rank + worker_id) % 2**31
    seed_all_rng(seed)


def worker_init_reset_seed(worker_id: int) -> None:
    """``DataLoader`` worker init: one torch thread, python/numpy/torch RNGs seeded per worker."""
    _seed_worker(worker_id)


class _StreamDataLoader(torchdata.DataLoader):
    """A ``DataLoader`` over a resumable ``ToIterableDataset`` (its ``dataset``) that can save
    and restore its position in that stream, as ``AspectRatioGroupedDataset`` does."""

    def __iter__(self) -> Any:
        self._received = 0
        for batch in super().__iter__():
            # Each batch holds the next batch_size positions: the workers take whole batches.
            self._received += self.batch_size
            yield batch

    def state_dict(self) -> dict:
        return self.dataset.state_after(getattr(self, "_received", 0))

    def load_state_dict(self, state_dict: dict) -> None:
        self.dataset.load_state_dict(state_dict)
        self._received = 0


def _per_process_batch_size(total_batch_size: int | None, single_gpu_batch_size: int | None) -> int:
    if single_gpu_batch_size:
        if total_batch_size:
            raise ValueError("Give total_batch_size or single_gpu_batch_size, not both.")
        return single_gpu_batch_size
    world_size = comm.get_world_size()
    if not total_batch_size or total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"Total batch size ({total_batch_size}) must be a positive multiple of the number "
            f"of processes ({world_size})."
        )
    return total_batch_size // world_size


def build_batch_data_loader(
    dataset: torchdata.Dataset,
    sampler: torchdata.Sampler | None,
    total_batch_size: int | None,
    *,
    aspect_ratio_grouping: bool = False,
    num_workers: int = 0,
    collate_fn: Callable[[list], Any] | None = None,
    drop_last: bool = True,
    single_gpu_batch_size: int | None = None,
    prefetch_factor: int = 2,
    persistent_workers: bool = False,
    pin_memory: bool = False,
    seed: int | None = None,
    **kwargs: Any,
) -> Any:
    """Batch a (mapped) dataset into ``list`` batches, for training or inference.

    Args:
        dataset (Dataset): map-style (then ``sampler`` is required) or iterable dataset.
        sampler (Sampler | None): the index sampler; None for an iterable dataset.
        total_batch_size (int | None): images per step over all processes.
        aspect_ratio_grouping (bool): batch landscape and portrait images separately (needs
            ``drop_last``). Defaults to False.
        num_workers (int): ``DataLoader`` worker processes. Defaults to 0.
        collate_fn (Callable | None): applied to each ``list`` batch. Defaults to None.
        drop_last (bool): drop the last incomplete batch of a finite dataset. Defaults to True.
        single_gpu_batch_size (int | None): images per process, instead of
            ``total_batch_size``. Defaults to None.
        prefetch_factor (int): batches each worker loads ahead. Defaults to 2.
        persistent_workers (bool): keep the workers between passes. Defaults to False.
        pin_memory (bool): see ``DataLoader``. Defaults to False.
        seed (int | None): seeds each image's RNGs with its place in the stream, so its
            augmentation is reproducible whatever the workers. Defaults to None (the
            sampler's seed when it has one).
        **kwargs: passed to ``DataLoader``.

    Returns:
        An iterable of batches (``list`` unless ``collate_fn`` says otherwise). Over a seeded
        sampler with ``state_dict`` (the training samplers), it also has ``state_dict`` and
        ``load_state_dict``: its place in the stream, for an exact resume.
    """
    batch_size = _per_process_batch_size(total_batch_size, single_gpu_batch_size)
    logger.info(f"Making a batched data loader with batch_size={batch_size}")
    base_seed = seed if seed is not None else getattr(sampler, "seed", None)
    if isinstance(dataset, torchdata.IterableDataset):
        assert sampler is None, "sampler must be None if dataset is an IterableDataset"
    else:
        # Grouped loaders batch after the workers, so a chunk of 1 keeps the sampler's order;
        # otherwise each worker fills whole batches, so only the very last one can be short.
        chunk = 1 if aspect_ratio_grouping else batch_size
        dataset = ToIterableDataset(dataset, sampler, shard_chunk_size=chunk, seed=base_seed)
    stream = dataset if isinstance(dataset, ToIterableDataset) and dataset.resumable else None
    # Seeds torch's worker seeding; without it, iter() would draw from the global RNG, which
    # the model may draw from too (a resumed run would draw once more).
    generator = None if base_seed is None else torch.Generator().manual_seed(base_seed)
    loader_kwargs = dict(
        num_workers=num_workers,
        worker_init_fn=functools.partial(_seed_worker, base_seed=base_seed, rank=comm.get_rank()),
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        persistent_workers=persistent_workers and num_workers > 0,
        pin_memory=pin_memory,
        generator=generator,
        **kwargs,
    )
    if aspect_ratio_grouping:
        assert drop_last, "Aspect ratio grouping drops incomplete batches: it needs drop_last"
        # batch_size=1 + itemgetter(0): the workers hand over single mapped dicts.
        loader = torchdata.DataLoader(dataset, collate_fn=operator.itemgetter(0), **loader_kwargs)
        loader = AspectRatioGroupedDataset(loader, batch_size, stream=stream)
        return loader if collate_fn is None else MapDataset(loader, collate_fn)
    return (torchdata.DataLoader if stream is None else _StreamDataLoader)(
        dataset,
        batch_size=batch_size,
        drop_last=drop_last,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
        **loader_kwargs,
    )


def _cfg_seed(cfg: CfgNode) -> int | None:
    # Detectron2 passes cfg.SEED as is; a negative SEED means "random" in d2lite's config, so
    # it leaves the sampler to draw a shared seed instead of fixing every run's order at -1.
    return cfg.SEED if cfg.SEED >= 0 else None


def _dataloader_key(cfg: CfgNode, key: str) -> Any:
    if key not in cfg.DATALOADER:
        raise ValueError(
            f"cfg.DATALOADER.SAMPLER_TRAIN={cfg.DATALOADER.SAMPLER_TRAIN!r} needs "
            f"cfg.DATALOADER.{key}; set it in the config"
        )
    return cfg.DATALOADER[key]


def _category_factors(cfg: CfgNode, dataset_dicts: Sequence[dict]) -> torch.Tensor:
    return RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
        dataset_dicts, cfg.DATALOADER.REPEAT_THRESHOLD, sqrt=cfg.DATALOADER.REPEAT_SQRT
    )


def _weighted_sampler(cfg: CfgNode, balance_categories: bool) -> RepeatFactorTrainingSampler:
    """Repeat each dataset of ``DATASETS.TRAIN`` by its ``DATASETS.TRAIN_REPEAT_FACTOR``."""
    if "TRAIN_REPEAT_FACTOR" not in cfg.DATASETS:
        raise ValueError("Weighted training samplers need cfg.DATASETS.TRAIN_REPEAT_FACTOR")
    weights = {name: float(w) for name, w in cfg.DATASETS.TRAIN_REPEAT_FACTOR}
    unknown = set(weights) - set(cfg.DATASETS.TRAIN)
    if unknown:
        raise ValueError(f"DATASETS.TRAIN_REPEAT_FACTOR names datasets not in TRAIN: {unknown}")
    # Loaded one by one, in TRAIN order, so the factors line up with the concatenated dataset.
    per_dataset = [
        get_detection_dataset_dicts([name], filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
        for name in cfg.DATASETS.TRAIN
    ]
    factors = torch.tensor(
        [weights.get(name, 1.0) for name, d in zip(cfg.DATASETS.TRAIN, per_dataset) for _ in d]
    )
    if balance_categories:
        factors = factors * torch.cat([_category_factors(cfg, d) for d in per_dataset])
        factors = factors / factors.min()
    logger.info(f"Dataset repeat factors: {weights}")
    return RepeatFactorTrainingSampler(factors, seed=_cfg_seed(cfg))


def _train_sampler_from_config(cfg: CfgNode, dataset: Sequence) -> torchdata.Sampler:
    """The sampler named by ``cfg.DATALOADER.SAMPLER_TRAIN``."""
    name = cfg.DATALOADER.SAMPLER_TRAIN
    logger.info(f"Using training sampler {name}")
    if name == "TrainingSampler":
        return TrainingSampler(len(dataset), seed=_cfg_seed(cfg))
    if name == "RepeatFactorTrainingSampler":
        return RepeatFactorTrainingSampler(_category_factors(cfg, dataset), seed=_cfg_seed(cfg))
    if name == "RandomSubsetTrainingSampler":
        ratio = _dataloader_key(cfg, "RANDOM_SUBSET_RATIO")
        return RandomSubsetTrainingSampler(len(dataset), ratio, seed_shuffle=_cfg_seed(cfg))
    if name in ("WeightedTrainingSampler", "WeightedCategoryTrainingSampler"):
        return _weighted_sampler(cfg, balance_categories=name == "WeightedCategoryTrainingSampler")
    raise ValueError(
        f"Unknown training sampler cfg.DATALOADER.SAMPLER_TRAIN={name!r}; expected one of "
        "TrainingSampler, RepeatFactorTrainingSampler, RandomSubsetTrainingSampler, "
        "WeightedTrainingSampler, WeightedCategoryTrainingSampler"
    )


def _check_model_classes(cfg: CfgNode, dataset_dicts: list[dict]) -> None:
    """Fails here, before the first step, rather than in the classification loss."""
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "ProposalNetwork":  # class-agnostic: NUM_CLASSES means nothing
        return
    # Another architecture may not classify with ROI_HEADS.NUM_CLASSES: warn only.
    strict = arch == "GeneralizedRCNN"
    num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    check_num_classes(cfg.DATASETS.TRAIN, dataset_dicts, num_classes, strict=strict)


def _mapped(
    dataset: Any, mapper: Callable | None, sampler: Any, default_sampler: Callable[[int], Any]
) -> tuple[torchdata.Dataset, torchdata.Sampler | None]:
    """The dataset (a list made a ``DatasetFromList``) mapped by ``mapper``, and its sampler:
    None for an iterable dataset, else ``sampler`` or ``default_sampler(len(dataset))``."""
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    if mapper is not None:
        dataset = MapDataset(dataset, mapper)
    if isinstance(dataset, torchdata.IterableDataset):
        assert sampler is None, "sampler must be None if dataset is an IterableDataset"
    elif sampler is None:
        sampler = default_sampler(len(dataset))
    return dataset, sampler


def _train_loader_from_config(
    cfg: CfgNode,
    mapper: Callable[[dict], Any] | None = None,
    *,
    dataset: Sequence | torchdata.Dataset | None = None,
    sampler: torchdata.Sampler | None = None,
) -> dict[str, Any]:
    if dataset is None:
        if not cfg.DATASETS.TRAIN:
            raise ValueError("cfg.DATASETS.TRAIN is empty: name a registered dataset there")
        dataset = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN,
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=(
                cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
            ),
            proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
        )
        if isinstance(dataset, list):
            _check_model_classes(cfg, dataset)
    if mapper is None:
        mapper = DatasetMapper(cfg, True)
    if sampler is None and not isinstance(dataset, torchdata.IterableDataset):
        sampler = _train_sampler_from_config(cfg, dataset)
    return {
        "dataset": dataset,
        "sampler": sampler,
        "mapper": mapper,
        "total_batch_size": cfg.SOLVER.IMS_PER_BATCH,
        "aspect_ratio_grouping": cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
    }


@configurable(from_config=_train_loader_from_config)
def build_detection_train_loader(
    dataset: Sequence | torchdata.Dataset,
    *,
    mapper: Callable[[dict], Any] | None,
    sampler: torchdata.Sampler | None = None,
    total_batch_size: int,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    collate_fn: Callable[[list], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Build the infinite training loader.

    Called with a config, ``build_detection_train_loader(cfg, mapper=None, *, dataset=None,
    sampler=None)``, it reads ``DATASETS.TRAIN`` (filtered per
    ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``), ``DatasetMapper(cfg, True)``, the sampler named by
    ``DATALOADER.SAMPLER_TRAIN``, ``SOLVER.IMS_PER_BATCH`` and ``DATALOADER.*``; any other
    keyword given overrides the config.

    Args:
        dataset (Sequence | Dataset): dataset dicts, or a map-style or iterable dataset.
        mapper (Callable | None): dataset dict -> model input, or None to skip the sample;
            None here means the dataset is already mapped.
        sampler (Sampler | None): index sampler for a map-style dataset; must be None for an
            iterable one. Defaults to None (``TrainingSampler``).
        total_batch_size (int): images per step over all processes; each process gets this
            divided by the world size.
        aspect_ratio_grouping (bool): batch landscape and portrait images separately (the
            mapped elements need ``width`` and ``height``). Defaults to True.
        num_workers (int): ``DataLoader`` worker processes. Defaults to 0.
        collate_fn (Callable | None): applied to each batch. Defaults to None (``list``).
        **kwargs: passed to ``build_batch_data_loader`` (e.g. ``persistent_workers``).

    Returns:
        An infinite iterable of batches, each a ``list`` of mapper outputs.
    """
    dataset, sampler = _mapped(dataset, mapper, sampler, TrainingSampler)
    assert sampler is None or isinstance(sampler, torchdata.Sampler), f"Not a Sampler: {sampler}"
    return build_batch_data_loader(
        dataset,
        sampler,
        total_batch_size,
        aspect_ratio_grouping=aspect_ratio_grouping,
        num_workers=num_workers,
        collate_fn=collate_fn,
        **kwargs,
    )


def _test_loader_from_config(
    cfg: CfgNode, dataset_name: str | Sequence[str], mapper: Callable[[dict], Any] | None = None
) -> dict[str, Any]:
    # The names come from the caller, not cfg.DATASETS.TEST: each test set is evaluated alone.
    names = [dataset_name] if isinstance(dataset_name, str) else list(dataset_name)
    proposal_files = None
    if cfg.MODEL.LOAD_PROPOSALS:
        tests = list(cfg.DATASETS.TEST)
        missing = [n for n in names if n not in tests]
        if missing:
            raise ValueError(f"{missing} not in DATASETS.TEST, so no PROPOSAL_FILES_TEST entry")
        proposal_files = [cfg.DATASETS.PROPOSAL_FILES_TEST[tests.index(n)] for n in names]
    dataset = get_detection_dataset_dicts(names, filter_empty=False, proposal_files=proposal_files)
    # No "sampler": the builder's default, InferenceSampler, is the one a test set needs.
    return {
        "dataset": dataset,
        "mapper": DatasetMapper(cfg, False) if mapper is None else mapper,
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
    }


@configurable(from_config=_test_loader_from_config)
def build_detection_test_loader(
    dataset: Sequence | torchdata.Dataset,
    *,
    mapper: Callable[[dict], Any] | None,
    sampler: torchdata.Sampler | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    collate_fn: Callable[[list], Any] | None = None,
) -> torchdata.DataLoader:
    """Build a finite loader that yields every image once (this process's shard), in order.

    Called with a config, ``build_detection_test_loader(cfg, dataset_name, mapper=None)``, it
    loads the named dataset(s) unfiltered with ``DatasetMapper(cfg, False)`` and
    ``DATALOADER.NUM_WORKERS``; other keywords (e.g. ``batch_size``) override.

    Args:
        dataset (Sequence | Dataset): dataset dicts, or a map-style or iterable dataset.
        mapper (Callable | None): dataset dict -> model input; None if already mapped.
        sampler (Sampler | None): must be None for an iterable dataset. Defaults to None
            (``InferenceSampler``, which splits the dataset among processes).
        batch_size (int): images per batch. Defaults to 1.
        num_workers (int): ``DataLoader`` worker processes. Defaults to 0.
        collate_fn (Callable | None): defaults to ``trivial_batch_collator``.

    Returns:
        DataLoader: yields ``list`` batches; ``len()`` is the number of batches.
    """
    dataset, sampler = _mapped(dataset, mapper, sampler, InferenceSampler)
    return torchdata.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
        worker_init_fn=worker_init_reset_seed,
        # Evaluation runs many times in a training; keeping the workers saves their start-up.
        persistent_workers=num_workers > 0,
    )
