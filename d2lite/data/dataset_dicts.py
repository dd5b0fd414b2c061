"""Load registered datasets by name and prepare their dicts: filters, proposals, statistics.

``get_detection_dataset_dicts(names)`` is what the loader builders of ``build.py`` call; the
functions are re-exported there under Detectron2's names (``d2lite.data.build.*``).
"""

from __future__ import annotations

import itertools
import logging
from typing import Sequence

import numpy as np
import torch.utils.data as torchdata
from tabulate import tabulate

from ..checkpoint.safe_pickle import safe_load_pickle
from ..structures import BoxMode
from ..utils.file_io import PathManager
from ..utils.logger import log_first_n
from .catalog import DatasetCatalog, MetadataCatalog
from .detection_utils import check_metadata_consistency

__all__ = [
    "check_num_classes",
    "filter_images_with_only_crowd_annotations",
    "filter_images_with_few_keypoints",
    "get_detection_dataset_dicts",
    "load_proposals_into_dataset",
    "print_instances_class_histogram",
]

logger = logging.getLogger(__name__)


def filter_images_with_only_crowd_annotations(
    dataset_dicts: list[dict], dataset_names: Sequence[str] = ()
) -> list[dict]:
    """Keep the images that have at least one non-crowd annotation (training needs a target)."""
    kept = [
        d for d in dataset_dicts if any(a.get("iscrowd", 0) == 0 for a in d.get("annotations", []))
    ]
    source = f" from {', '.join(dataset_names)}" if dataset_names else ""
    logger.info(
        f"Removed {len(dataset_dicts) - len(kept)} images with no usable annotations{source}. "
        f"{len(kept)} images left."
    )
    return kept


def filter_images_with_few_keypoints(
    dataset_dicts: list[dict], min_keypoints_per_image: int
) -> list[dict]:
    """Keep the images with at least ``min_keypoints_per_image`` visible keypoints."""

    def num_visible(d: dict) -> int:
        # COCO keypoints are flat (x, y, visibility) triples; visibility > 0 means labelled.
        return sum(
            int((np.asarray(a["keypoints"][2::3]) > 0).sum())
            for a in d.get("annotations", [])
            if "keypoints" in a
        )

    kept = [d for d in dataset_dicts if num_visible(d) >= min_keypoints_per_image]
    logger.info(
        f"Removed {len(dataset_dicts) - len(kept)} images with fewer than "
        f"{min_keypoints_per_image} keypoints."
    )
    return kept


# Where a pickled BoxMode may say it comes from: Detectron2's files name its own module.
_BOX_MODE_MODULES = ("d2lite.structures.boxes", "detectron2.structures.boxes")


def load_proposals_into_dataset(dataset_dicts: list[dict], proposal_file: str) -> list[dict]:
    """Add precomputed proposals from a pickle file to each dataset dict (in place).

    The pickle holds a dict with ``ids`` (image ids), ``boxes`` (one ``np.ndarray[R, 4]`` per
    image), ``objectness_logits`` (one ``np.ndarray[R]`` per image) and optionally
    ``bbox_mode`` (default XYXY_ABS); Detectron1's ``indexes`` / ``scores`` names are accepted.

    Args:
        dataset_dicts (list[dict]): dicts with ``image_id``.
        proposal_file (str): path (or URL) of the pickle.

    Returns:
        list[dict]: the same dicts, each with ``proposal_boxes``,
        ``proposal_objectness_logits`` (sorted by decreasing score) and ``proposal_bbox_mode``.

    Raises:
        KeyError: if an image of the dataset has no proposals in the file.
    """
    logger.info(f"Loading proposals from {proposal_file}")
    # A proposal file is a pickle from elsewhere: only arrays, containers and BoxMode load.
    box_mode = {(m, "BoxMode"): BoxMode for m in _BOX_MODE_MODULES}
    with PathManager.open(proposal_file, "rb") as f:
        proposals = safe_load_pickle(proposal_file, f, extra_globals=box_mode)
    for old, new in (("indexes", "ids"), ("scores", "objectness_logits")):
        if old in proposals:
            proposals[new] = proposals.pop(old)
    # Ids are compared as strings: files written elsewhere may store them as str or int.
    wanted = {str(d["image_id"]) for d in dataset_dicts}
    index_of = {str(i): k for k, i in enumerate(proposals["ids"]) if str(i) in wanted}
    bbox_mode = BoxMode(proposals.get("bbox_mode", BoxMode.XYXY_ABS))
    for record in dataset_dicts:
        try:
            k = index_of[str(record["image_id"])]
        except KeyError as e:
            image_id = record["image_id"]
            raise KeyError(f"{proposal_file} has no proposals for image {image_id}") from e
        logits = proposals["objectness_logits"][k]
        order = logits.argsort()[::-1]
        record["proposal_boxes"] = proposals["boxes"][k][order]
        record["proposal_objectness_logits"] = logits[order]
        record["proposal_bbox_mode"] = bbox_mode
    return dataset_dicts


def print_instances_class_histogram(dataset_dicts: list[dict], class_names: Sequence[str]) -> None:
    """Log how many (non-crowd) instances each class has.

    Raises:
        AssertionError: if a ``category_id`` is outside ``[0, len(class_names))``.
    """
    num_classes = len(class_names)
    counts = np.zeros(num_classes, dtype=int)
    for d in dataset_dicts:
        ids = [a["category_id"] for a in d.get("annotations", []) if not a.get("iscrowd", 0)]
        if ids:
            assert 0 <= min(ids) and max(ids) < num_classes, (
                f"Got category_id {min(ids)}..{max(ids)} for a dataset of {num_classes} classes"
            )
            counts += np.bincount(ids, minlength=num_classes)
    # Three (category, count) pairs per row keep an 80-class table readable in a terminal.
    cells = [c for i, name in enumerate(class_names) for c in (str(name), int(counts[i]))]
    cells += [None] * (-len(cells) % 6)
    if num_classes > 1:
        cells += ["total", int(counts.sum())] + [None] * 4
    rows = [cells[i : i + 6] for i in range(0, len(cells), 6)]
    table = tabulate(rows, headers=["category", "#instances"] * 3, tablefmt="pipe")
    logger.info(f"Distribution of instances among all {num_classes} categories:\n{table}")


def check_num_classes(
    names: Sequence[str],
    dataset_dicts: Sequence[dict],
    num_classes: int,
    *,
    key: str = "MODEL.ROI_HEADS.NUM_CLASSES",
    strict: bool = True,
) -> None:
    """Checks, before training, that a model of ``num_classes`` classes can learn the datasets.

    Fewer classes than a dataset's ``thing_classes``, or a (non-crowd) annotation whose
    ``category_id`` is outside ``[0, num_classes)``, would otherwise fail inside the loss of the
    first step that meets it ("Target 8 is out of bounds"). More classes than ``thing_classes``
    train (the extra ones are never seen), with a warning.

    Args:
        names (Sequence[str]): the registered datasets the dicts come from.
        dataset_dicts (Sequence[dict]): their dicts, as the loader gets them.
        num_classes (int): the classes the model predicts.
        key (str): the config key of ``num_classes``, for the messages.
            Defaults to "MODEL.ROI_HEADS.NUM_CLASSES".
        strict (bool): raise on the errors; False only warns (a model that may not use
            ``key``). Defaults to True.

    Raises:
        ValueError: naming the dataset or the annotation and image, when ``strict``.
    """
    for name in names:
        classes = MetadataCatalog.get(name).get("thing_classes")
        if classes is None or len(classes) == num_classes:
            continue
        msg = f"{key}={num_classes} but there are {len(classes)} thing_classes of dataset '{name}'"
        if len(classes) > num_classes:
            _refuse(f"{msg}: set {key} to {len(classes)}.", strict)
        else:
            never = f"{msg}: the extra classes are never trained."
            log_first_n(logging.WARNING, never, key="message")
    for d in dataset_dicts:
        for ann in d.get("annotations", ()):
            cat = ann.get("category_id")
            if ann.get("iscrowd", 0) or cat is None or 0 <= cat < num_classes:
                continue
            _refuse(
                f"annotation {ann.get('id')} of {d.get('file_name')} in {list(names)} has "
                f"category_id {cat}, but {key}={num_classes} (ids must be in [0, {num_classes})).",
                strict,
            )
            return


def _refuse(msg: str, strict: bool) -> None:
    if strict:
        raise ValueError(msg)
    logger.warning(msg)


def _check_thing_classes(names: Sequence[str], dataset_dicts: list[dict]) -> None:
    class_names = MetadataCatalog.get(names[0]).get("thing_classes")
    if class_names is None:
        return
    try:
        check_metadata_consistency("thing_classes", names)
    except AttributeError as e:
        # Detectron2 skips the check then; say so instead of staying silent.
        logger.warning(f"Not checking that {list(names)} share thing_classes: {e}")
        return
    print_instances_class_histogram(dataset_dicts, class_names)


def get_detection_dataset_dicts(
    names: str | Sequence[str],
    filter_empty: bool = True,
    min_keypoints: int = 0,
    proposal_files: Sequence[str] | None = None,
    check_consistency: bool = True,
) -> list[dict] | torchdata.Dataset:
    """Load and concatenate registered datasets.

    Args:
        names (str | Sequence[str]): registered dataset name(s).
        filter_empty (bool): drop images without non-crowd annotations. Defaults to True.
        min_keypoints (int): drop images with fewer visible keypoints; 0 keeps all.
            Defaults to 0.
        proposal_files (Sequence[str] | None): one precomputed-proposal pickle per dataset
            (see ``load_proposals_into_dataset``). Defaults to None.
        check_consistency (bool): check that the datasets share ``thing_classes``.
            Defaults to True.

    Returns:
        list[dict], or the registered ``torch.utils.data.Dataset`` itself (a
        ``ConcatDataset`` of several) when the catalog returns datasets instead of lists.

    Raises:
        KeyError: a name is not registered.
        ValueError: no names, a dataset is empty, the proposal files do not match the names,
            or nothing is left after filtering.
    """
    names = [names] if isinstance(names, str) else list(names)
    if len(names) == 0:
        raise ValueError("get_detection_dataset_dicts needs at least one dataset name")
    per_dataset = [DatasetCatalog.get(name) for name in names]
    if isinstance(per_dataset[0], torchdata.Dataset):
        return per_dataset[0] if len(per_dataset) == 1 else torchdata.ConcatDataset(per_dataset)
    for name, dicts in zip(names, per_dataset):
        if len(dicts) == 0:
            raise ValueError(f"Dataset '{name}' is empty!")
    if proposal_files:
        if len(proposal_files) != len(names):
            raise ValueError(
                f"{len(proposal_files)} proposal files for {len(names)} datasets {names}"
            )
        per_dataset = [
            load_proposals_into_dataset(d, f) for d, f in zip(per_dataset, proposal_files)
        ]
    dataset_dicts = list(itertools.chain.from_iterable(per_dataset))
    has_instances = "annotations" in dataset_dicts[0]
    if filter_empty and has_instances:
        dataset_dicts = filter_images_with_only_crowd_annotations(dataset_dicts, names)
    if min_keypoints > 0 and has_instances:
        dataset_dicts = filter_images_with_few_keypoints(dataset_dicts, min_keypoints)
    if check_consistency and has_instances:
        _check_thing_classes(names, dataset_dicts)
    if len(dataset_dicts) == 0:
        raise ValueError(
            f"No valid data found in {', '.join(names)} (all images filtered out with "
            f"filter_empty={filter_empty}, min_keypoints={min_keypoints})."
        )
    return dataset_dicts
