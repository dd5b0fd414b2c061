"""Build the training and test data loaders from registered datasets.

Training: dataset dicts -> ``MapDataset`` (mapper) -> infinite sampler -> workers ->
aspect-ratio grouped ``list[dict]`` batches. Test: one image per batch, each exactly once.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import random
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.utils.data as torchdata

from ..config import CfgNode
from .catalog import DatasetCatalog, MetadataCatalog
from .common import AspectRatioGroupedDataset, DatasetFromList, MapDataset, ToIterableDataset
from .dataset_mapper import DatasetMapper
from .detection_utils import check_metadata_consistency
from .samplers import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler

__all__ = [
    "build_batch_data_loader",
    "build_detection_train_loader",
    "build_detection_test_loader",
    "get_detection_dataset_dicts",
    "print_instances_class_histogram",
    "trivial_batch_collator",
    "worker_init_reset_seed",
]

logger = logging.getLogger(__name__)


def filter_images_with_only_crowd_annotations(
    dataset_dicts: list[dict], dataset_names: Sequence[str]
) -> list[dict]:
    """Keep the images that have at least one non-crowd annotation (training needs a target)."""
    num_before = len(dataset_dicts)
    kept = [
        d for d in dataset_dicts if any(a.get("iscrowd", 0) == 0 for a in d.get("annotations", []))
    ]
    logger.info(
        f"Removed {num_before - len(kept)} images with no usable annotations from "
        f"{', '.join(dataset_names)}. {len(kept)} images left."
    )
    return kept


def print_instances_class_histogram(dataset_dicts: list[dict], class_names: Sequence[str]) -> None:
    """Log how many (non-crowd) instances each class has."""
    counts = Counter(
        a["category_id"]
        for d in dataset_dicts
        for a in d.get("annotations", [])
        if not a.get("iscrowd", 0)
    )
    width = max([len(str(n)) for n in class_names] + [8])
    lines = [f"{'category':<{width}} | #instances"]
    for i, name in enumerate(class_names):
        lines.append(f"{str(name):<{width}} | {counts.get(i, 0)}")
    lines.append(f"{'total':<{width}} | {sum(counts.values())}")
    logger.info("Distribution of instances among all categories:\n" + "\n".join(lines))


def get_detection_dataset_dicts(
    names: str | Sequence[str],
    filter_empty: bool = True,
    min_keypoints: int = 0,
    proposal_files: Sequence[str] | None = None,
    check_consistency: bool = True,
) -> list[dict]:
    """Load and concatenate registered datasets.

    Args:
        names (str | Sequence[str]): registered dataset name(s).
        filter_empty (bool): drop images without non-crowd annotations. Defaults to True.
        min_keypoints (int): must be 0: d2lite has no keypoints (kept for Detectron2's
            signature). Defaults to 0.
        proposal_files (Sequence[str] | None): precomputed proposals; not supported by d2lite
            (they are pickles), so only None or empty is accepted. Defaults to None.
        check_consistency (bool): check that the datasets share ``thing_classes``.
            Defaults to True.

    Raises:
        KeyError: a name is not registered.
        ValueError: a dataset is empty, or nothing is left after filtering.
    """
    if isinstance(names, str):
        names = [names]
    if len(names) == 0:
        raise ValueError("get_detection_dataset_dicts needs at least one dataset name")
    if min_keypoints > 0:
        raise ValueError("d2lite detects boxes only; min_keypoints must be 0")
    if proposal_files:
        raise ValueError("d2lite does not load precomputed proposals (DATASETS.PROPOSAL_FILES_*)")
    per_dataset = [DatasetCatalog.get(name) for name in names]
    for name, dicts in zip(names, per_dataset):
        if len(dicts) == 0:
            raise ValueError(f"Dataset '{name}' is empty!")
    dataset_dicts = list(itertools.chain.from_iterable(per_dataset))
    has_instances = "annotations" in dataset_dicts[0]
    if filter_empty and has_instances:
        dataset_dicts = filter_images_with_only_crowd_annotations(dataset_dicts, names)
    if check_consistency and has_instances:
        class_names = MetadataCatalog.get(names[0]).get("thing_classes")
        if class_names is not None:
            check_metadata_consistency("thing_classes", names)
            print_instances_class_histogram(dataset_dicts, class_names)
    if len(dataset_dicts) == 0:
        raise ValueError(f"No valid data found in {', '.join(names)} (all images filtered out).")
    return dataset_dicts


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
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def worker_init_reset_seed(worker_id: int) -> None:
    """``DataLoader`` worker init: one torch thread, python/numpy/torch RNGs seeded per worker."""
    _seed_worker(worker_id)


def _rank_and_world_size() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def build_batch_data_loader(
    dataset: torchdata.Dataset,
    sampler: torchdata.Sampler | None,
    total_batch_size: int,
    *,
    aspect_ratio_grouping: bool = False,
    num_workers: int = 0,
    collate_fn: Callable[[list], Any] | None = None,
    drop_last: bool = True,
) -> Any:
    """Batch a (mapped) dataset for training.

    Args:
        dataset (Dataset): map-style (then ``sampler`` is required) or iterable dataset.
        sampler (Sampler | None): the index sampler; None for an iterable dataset.
        total_batch_size (int): images per step over all processes.
        aspect_ratio_grouping (bool): batch landscape and portrait images separately.
            Defaults to False.
        num_workers (int): ``DataLoader`` worker processes. Defaults to 0.
        collate_fn (Callable | None): applied to each ``list[dict]`` batch. Defaults to None.
        drop_last (bool): drop the last incomplete batch (finite datasets only). Defaults to True.

    Returns:
        An iterable of batches (``list[dict]`` unless ``collate_fn`` says otherwise).
    """
    rank, world_size = _rank_and_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"Total batch size ({total_batch_size}) must be a positive multiple of the number "
            f"of processes ({world_size})."
        )
    batch_size = total_batch_size // world_size
    base_seed = getattr(sampler, "seed", None)
    if isinstance(dataset, torchdata.IterableDataset):
        assert sampler is None, "An iterable dataset does not take a sampler"
    else:
        dataset = ToIterableDataset(dataset, sampler)
    loader_kwargs = dict(
        num_workers=num_workers,
        worker_init_fn=functools.partial(_seed_worker, base_seed=base_seed, rank=rank),
        persistent_workers=num_workers > 0,
    )
    if aspect_ratio_grouping:
        loader = torchdata.DataLoader(dataset, collate_fn=operator.itemgetter(0), **loader_kwargs)
        loader = AspectRatioGroupedDataset(loader, batch_size)
        return loader if collate_fn is None else MapDataset(loader, collate_fn)
    return torchdata.DataLoader(
        dataset,
        batch_size=batch_size,
        drop_last=drop_last,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
        **loader_kwargs,
    )


def _train_sampler_from_config(cfg: CfgNode, dataset: list[dict]) -> torchdata.Sampler:
    name = cfg.DATALOADER.SAMPLER_TRAIN
    logger.info(f"Using training sampler {name}")
    if name == "TrainingSampler":
        return TrainingSampler(len(dataset))
    if name == "RepeatFactorTrainingSampler":
        factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
            dataset, cfg.DATALOADER.REPEAT_THRESHOLD, sqrt=cfg.DATALOADER.REPEAT_SQRT
        )
        return RepeatFactorTrainingSampler(factors)
    raise ValueError(
        f"Unknown training sampler cfg.DATALOADER.SAMPLER_TRAIN={name!r}; expected "
        f"'TrainingSampler' or 'RepeatFactorTrainingSampler'"
    )


def build_detection_train_loader(
    cfg: CfgNode | list | torchdata.Dataset | None = None,
    mapper: Callable[[dict], Any] | None = None,
    *,
    sampler: torchdata.Sampler | None = None,
    dataset: list | torchdata.Dataset | None = None,
    total_batch_size: int | None = None,
    aspect_ratio_grouping: bool | None = None,
    num_workers: int | None = None,
    collate_fn: Callable[[list], Any] | None = None,
) -> Any:
    """Build the infinite training loader, from a config and/or explicit arguments.

    Every argument given explicitly overrides the config; without a config, ``dataset``,
    ``mapper`` and ``total_batch_size`` are required.

    Args:
        cfg (CfgNode | list | Dataset | None): the config, or (Detectron2's explicit style)
            the dataset itself. Defaults to None.
        mapper (Callable | None): dataset dict -> model input dict, or None to skip the sample.
            Defaults to None (``DatasetMapper(cfg, True)``).
        sampler (Sampler | None): defaults to the one named by ``DATALOADER.SAMPLER_TRAIN``,
            or ``TrainingSampler`` without a config.
        dataset (list | Dataset | None): defaults to ``DATASETS.TRAIN`` filtered per
            ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``.
        total_batch_size (int | None): defaults to ``SOLVER.IMS_PER_BATCH``; each process gets
            this divided by the world size.
        aspect_ratio_grouping (bool | None): defaults to ``DATALOADER.ASPECT_RATIO_GROUPING``
            (True without a config).
        num_workers (int | None): defaults to ``DATALOADER.NUM_WORKERS`` (0 without a config).
        collate_fn (Callable | None): applied to each batch. Defaults to None (``list[dict]``).

    Returns:
        An infinite iterable of batches, each a ``list`` of mapper outputs.
    """
    if cfg is not None and not isinstance(cfg, CfgNode):
        dataset, cfg = cfg, None
    if cfg is not None:
        if dataset is None:
            if not cfg.DATASETS.TRAIN:
                raise ValueError("cfg.DATASETS.TRAIN is empty: name a registered dataset there")
            dataset = get_detection_dataset_dicts(
                cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
            )
        mapper = DatasetMapper(cfg, True) if mapper is None else mapper
        if sampler is None and not isinstance(dataset, torchdata.IterableDataset):
            sampler = _train_sampler_from_config(cfg, dataset)
        if total_batch_size is None:
            total_batch_size = cfg.SOLVER.IMS_PER_BATCH
        if aspect_ratio_grouping is None:
            aspect_ratio_grouping = cfg.DATALOADER.ASPECT_RATIO_GROUPING
        num_workers = cfg.DATALOADER.NUM_WORKERS if num_workers is None else num_workers
    if dataset is None or total_batch_size is None:
        raise TypeError("build_detection_train_loader needs a cfg, or dataset= + total_batch_size=")
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    if mapper is not None:
        dataset = MapDataset(dataset, mapper)
    if sampler is None and not isinstance(dataset, torchdata.IterableDataset):
        sampler = TrainingSampler(len(dataset))
    return build_batch_data_loader(
        dataset,
        sampler,
        total_batch_size,
        aspect_ratio_grouping=True if aspect_ratio_grouping is None else aspect_ratio_grouping,
        num_workers=num_workers or 0,
        collate_fn=collate_fn,
    )


def build_detection_test_loader(
    cfg: CfgNode | list | torchdata.Dataset | None = None,
    dataset_name: str | Sequence[str] | None = None,
    mapper: Callable[[dict], Any] | None = None,
    *,
    dataset: list | torchdata.Dataset | None = None,
    sampler: torchdata.Sampler | None = None,
    batch_size: int = 1,
    num_workers: int | None = None,
    collate_fn: Callable[[list], Any] | None = None,
) -> torchdata.DataLoader:
    """Build a finite loader that yields every image once (this process's shard), in order.

    Args:
        cfg (CfgNode | list | Dataset | None): the config, or the dataset itself.
            Defaults to None.
        dataset_name (str | Sequence[str] | None): registered name(s), used with ``cfg``.
            Defaults to None.
        mapper (Callable | None): defaults to ``DatasetMapper(cfg, False)``.
        dataset (list | Dataset | None): explicit dataset instead of ``dataset_name``.
            Defaults to None.
        sampler (Sampler | None): defaults to ``InferenceSampler``.
        batch_size (int): images per batch. Defaults to 1.
        num_workers (int | None): defaults to ``DATALOADER.NUM_WORKERS`` (0 without a config).
        collate_fn (Callable | None): defaults to ``trivial_batch_collator``.

    Returns:
        DataLoader: yields ``list[dict]`` batches; ``len()`` is the number of batches.
    """
    if cfg is not None and not isinstance(cfg, CfgNode):
        dataset, cfg = cfg, None
    if dataset is None:
        if dataset_name is None:
            raise TypeError("build_detection_test_loader needs dataset_name or dataset=")
        dataset = get_detection_dataset_dicts(dataset_name, filter_empty=False)
    if cfg is not None:
        mapper = DatasetMapper(cfg, False) if mapper is None else mapper
        num_workers = cfg.DATALOADER.NUM_WORKERS if num_workers is None else num_workers
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    if mapper is not None:
        dataset = MapDataset(dataset, mapper)
    if sampler is None and not isinstance(dataset, torchdata.IterableDataset):
        sampler = InferenceSampler(len(dataset))
    num_workers = num_workers or 0
    return torchdata.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
        worker_init_fn=worker_init_reset_seed,
        persistent_workers=num_workers > 0,
    )
