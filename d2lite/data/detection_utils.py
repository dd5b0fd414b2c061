"""Helpers a mapper uses: read an image, check its size, transform annotations, build Instances.

Image reading lives in ``image_io`` and is re-exported here under Detectron2's names.

d2lite detects boxes: the geometric parts of masks and keypoints (polygons, keypoint
coordinates) are transformed as in Detectron2, but ``Instances`` only get boxes and classes.
"""

from __future__ import annotations

import functools
import logging
import operator
from typing import Any, Sequence

import numpy as np
import torch

from ..config import CfgNode
from ..structures import Boxes, BoxMode, Instances
from ..utils.logger import log_first_n
from ..utils.unsupported import unsupported_function
from . import transforms as T
from .catalog import Metadata, MetadataCatalog
from .image_io import (
    SizeMismatchError,
    check_image_size,
    convert_image_to_rgb,
    convert_PIL_to_numpy,
    read_image,
)

__all__ = [
    "SizeMismatchError",
    "convert_PIL_to_numpy",
    "convert_image_to_rgb",
    "read_image",
    "check_image_size",
    "transform_proposals",
    "get_bbox",
    "transform_instance_annotations",
    "transform_keypoint_annotations",
    "annotations_to_instances",
    "annotations_to_instances_rotated",
    "filter_empty_instances",
    "create_keypoint_hflip_indices",
    "get_fed_loss_cls_weights",
    "gen_crop_transform_with_instance",
    "build_augmentation",
    "build_transform_gen",
    "check_metadata_consistency",
]

def transform_proposals(
    dataset_dict: dict,
    image_shape: tuple[int, int],
    transforms: T.TransformList,
    *,
    proposal_topk: int,
    min_box_size: float = 0,
) -> None:
    """Turn a dict's precomputed proposals into ``dataset_dict["proposals"]`` (in place).

    ``proposal_boxes``, ``proposal_objectness_logits`` and ``proposal_bbox_mode`` (as
    ``load_proposals_into_dataset`` writes them) are removed; the boxes are transformed,
    clipped to the image, filtered by size and cut to the ``proposal_topk`` best.

    Args:
        dataset_dict (dict): a dataset dict; nothing happens without ``proposal_boxes``.
        image_shape (tuple[int, int]): (height, width) of the transformed image.
        transforms (TransformList): what was applied to the image.
        proposal_topk (int): how many proposals to keep (they are sorted by score).
        min_box_size (float): drop proposals with a side <= this. Defaults to 0.
    """
    if "proposal_boxes" not in dataset_dict:
        return
    mode = dataset_dict.pop("proposal_bbox_mode")
    boxes = BoxMode.convert(np.asarray(dataset_dict.pop("proposal_boxes")), mode, BoxMode.XYXY_ABS)
    boxes = Boxes(transforms.apply_box(boxes))
    logits = np.asarray(dataset_dict.pop("proposal_objectness_logits"), dtype=np.float32)
    boxes.clip(image_shape)
    keep = boxes.nonempty(threshold=min_box_size)
    proposals = Instances(image_shape)
    proposals.proposal_boxes = boxes[keep][:proposal_topk]
    proposals.objectness_logits = torch.as_tensor(logits)[keep][:proposal_topk]
    dataset_dict["proposals"] = proposals


def get_bbox(annotation: dict) -> np.ndarray:
    """Return an annotation's box as ``np.ndarray[4]`` in XYXY_ABS."""
    box = np.asarray(annotation["bbox"], dtype=np.float64).reshape(1, 4)
    return BoxMode.convert(box, annotation["bbox_mode"], BoxMode.XYXY_ABS)[0]


def transform_instance_annotations(
    annotation: dict,
    transforms: T.TransformList | Sequence[T.Transform],
    image_size: tuple[int, int],
    *,
    keypoint_hflip_indices: np.ndarray | None = None,
) -> dict:
    """Apply ``transforms`` to one annotation (in place): its box, polygons and keypoints.

    The box is clipped to the image. Polygon ``segmentation`` and ``keypoints`` are transformed
    as in Detectron2; an RLE ``segmentation`` is dropped instead, since d2lite has no masks to
    build from it.

    Args:
        annotation (dict): with ``bbox`` and ``bbox_mode``.
        transforms (TransformList | Sequence[Transform]): what was applied to the image.
        image_size (tuple[int, int]): (height, width) of the transformed image.
        keypoint_hflip_indices (np.ndarray | None): see ``create_keypoint_hflip_indices``;
            needed to flip keypoints. Defaults to None.

    Returns:
        dict: the annotation, with ``bbox`` a ``np.ndarray[4]`` in XYXY_ABS.

    Raises:
        ValueError: if ``segmentation`` is neither polygons nor an RLE dict.
    """
    if isinstance(transforms, (tuple, list)):
        transforms = T.TransformList(transforms)
    bbox = transforms.apply_box(get_bbox(annotation)[None, :])[0].clip(min=0)
    h, w = image_size
    annotation["bbox"] = np.minimum(bbox, [w, h, w, h])
    annotation["bbox_mode"] = BoxMode.XYXY_ABS
    segm = annotation.get("segmentation")
    if isinstance(segm, list):
        polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in segm]
        annotation["segmentation"] = [p.reshape(-1) for p in transforms.apply_polygons(polygons)]
    elif isinstance(segm, dict):
        log_first_n(logging.WARNING, "d2lite has no masks: RLE segmentations are dropped")
        del annotation["segmentation"]
    elif segm is not None:
        raise ValueError(
            f"Cannot transform a segmentation of type {type(segm).__name__}: expected polygons "
            "(list[list[float]]) or a COCO RLE dict"
        )
    if "keypoints" in annotation:
        annotation["keypoints"] = transform_keypoint_annotations(
            annotation["keypoints"], transforms, image_size, keypoint_hflip_indices
        )
    return annotation


def transform_keypoint_annotations(
    keypoints: Any,
    transforms: T.TransformList,
    image_size: tuple[int, int],
    keypoint_hflip_indices: Sequence[int] | None = None,
) -> np.ndarray:
    """Transform an instance's keypoints; those that leave the image become unlabelled.

    Args:
        keypoints (Any): K (x, y, visibility) triples, flat or ``[K, 3]``.
        transforms (TransformList): what was applied to the image.
        image_size (tuple[int, int]): (height, width) of the transformed image.
        keypoint_hflip_indices (Sequence[int] | None): after a horizontal flip, keypoint i
            takes the place of ``keypoint_hflip_indices[i]`` (left and right swap).
            Defaults to None.

    Returns:
        np.ndarray[K, 3]: float64; an unlabelled keypoint (visibility 0) is all zeros.

    Raises:
        ValueError: on a horizontal flip without (matching) ``keypoint_hflip_indices``.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    xy = transforms.apply_coords(keypoints[:, :2])
    h, w = image_size
    inside = ((xy >= 0) & (xy <= [w, h])).all(axis=1)
    keypoints[:, :2] = xy
    keypoints[~inside, 2] = 0
    # Only HFlipTransform mirrors left and right; an even number of them cancels out.
    if sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms) % 2 == 1:
        if keypoint_hflip_indices is None:
            raise ValueError("Cannot flip keypoints without keypoint_hflip_indices")
        if len(keypoint_hflip_indices) != len(keypoints):
            raise ValueError(
                f"{len(keypoints)} keypoints, but keypoint_hflip_indices has "
                f"{len(keypoint_hflip_indices)} entries"
            )
        keypoints = keypoints[np.asarray(keypoint_hflip_indices, dtype=np.int64)]
    # COCO's convention: an unlabelled keypoint is (0, 0, 0).
    keypoints[keypoints[:, 2] == 0] = 0
    return keypoints


def annotations_to_instances(
    annos: list[dict], image_size: tuple[int, int], mask_format: str = "polygon"
) -> Instances:
    """Build the ``Instances`` a model trains on from (transformed) annotations.

    Args:
        annos (list[dict]): annotations with ``bbox``, ``bbox_mode`` and ``category_id``; may be
            empty. ``segmentation`` and ``keypoints`` are ignored (d2lite has no masks or
            keypoints).
        image_size (tuple[int, int]): (height, width).
        mask_format (str): accepted for Detectron2 compatibility. Defaults to "polygon".

    Returns:
        Instances: with ``gt_boxes (Boxes)`` and ``gt_classes (Tensor[N] int64)``.
    """
    if annos and ("segmentation" in annos[0] or "keypoints" in annos[0]):
        # INFO, not WARNING: a box model loses nothing; Detectron2 would add unused gt_masks.
        log_first_n(
            logging.INFO,
            "d2lite builds gt_boxes and gt_classes only: segmentation and keypoints are ignored",
        )
    boxes = [get_bbox(a) for a in annos]
    target = Instances(image_size)
    target.gt_boxes = Boxes(np.stack(boxes).astype(np.float32) if boxes else np.zeros((0, 4)))
    target.gt_classes = torch.tensor([int(a["category_id"]) for a in annos], dtype=torch.int64)
    return target


annotations_to_instances_rotated = unsupported_function(
    "annotations_to_instances_rotated", "rotated boxes", __name__
)


def filter_empty_instances(
    instances: Instances,
    by_box: bool = True,
    by_mask: bool = True,
    box_threshold: float = 1e-5,
    return_mask: bool = False,
) -> Instances | tuple[Instances, torch.Tensor]:
    """Drop instances whose box (or mask, if present) is empty.

    Args:
        instances (Instances): with ``gt_boxes``.
        by_box (bool): filter by box size. Defaults to True.
        by_mask (bool): filter by mask, when ``gt_masks`` exists. Defaults to True.
        box_threshold (float): boxes with a side <= this are empty. Defaults to 1e-5.
        return_mask (bool): also return the keep mask. Defaults to False.

    Returns:
        Instances, or (Instances, Tensor[N] bool) when ``return_mask``.
    """
    assert by_box or by_mask, "filter_empty_instances needs by_box or by_mask"
    keep = []
    if by_box:
        keep.append(instances.gt_boxes.nonempty(threshold=box_threshold))
    if by_mask and instances.has("gt_masks"):
        keep.append(instances.gt_masks.nonempty())
    if not keep:
        keep_all = torch.ones(len(instances), dtype=torch.bool)
        return (instances, keep_all) if return_mask else instances
    m = functools.reduce(operator.and_, keep)
    return (instances[m], m) if return_mask else instances[m]


def build_augmentation(cfg: CfgNode, is_train: bool) -> list[T.Augmentation]:
    """Return the default augmentations: a shortest-edge resize, plus a flip in training.

    Args:
        cfg (CfgNode): reads ``INPUT.MIN_SIZE_*``, ``INPUT.MAX_SIZE_*``,
            ``INPUT.MIN_SIZE_TRAIN_SAMPLING`` and ``INPUT.RANDOM_FLIP``.
        is_train (bool): training or test augmentations.
    """
    if is_train:
        min_size, max_size = cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN
        sample_style = cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
    else:
        min_size, max_size = cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST
        sample_style = "choice"
    augmentation: list[T.Augmentation] = [T.ResizeShortestEdge(min_size, max_size, sample_style)]
    flip = cfg.INPUT.RANDOM_FLIP
    if flip not in ("none", "horizontal", "vertical"):
        raise ValueError(
            f"cfg.INPUT.RANDOM_FLIP must be 'none', 'horizontal' or 'vertical', got {flip!r}"
        )
    if is_train and flip != "none":
        augmentation.append(
            T.RandomFlip(horizontal=flip == "horizontal", vertical=flip == "vertical")
        )
    return augmentation


build_transform_gen = build_augmentation
"""Old name of ``build_augmentation``."""


def check_metadata_consistency(key: str, dataset_names: Sequence[str]) -> None:
    """Check that metadata ``key`` is the same for all datasets (e.g. ``thing_classes``).

    Raises:
        AttributeError: if a dataset's metadata has no ``key``.
        ValueError: naming the key and the two disagreeing datasets.
    """
    if len(dataset_names) == 0:
        return
    entries = [getattr(MetadataCatalog.get(d), key) for d in dataset_names]
    for name, entry in zip(dataset_names, entries):
        if entry != entries[0]:
            raise ValueError(
                f"Datasets have different metadata '{key}'! '{dataset_names[0]}' has {entries[0]}"
                f" but '{name}' has {entry}"
            )


def _shared_metadata(dataset_names: str | Sequence[str], *keys: str) -> Metadata:
    """The first dataset's metadata, once ``keys`` are checked to be the same for all."""
    names = [dataset_names] if isinstance(dataset_names, str) else list(dataset_names)
    for key in keys:
        check_metadata_consistency(key, names)
    return MetadataCatalog.get(names[0])


def create_keypoint_hflip_indices(dataset_names: str | Sequence[str]) -> list[int]:
    """Where each keypoint goes under a horizontal flip, from ``keypoint_names`` and
    ``keypoint_flip_map`` (pairs of left/right names) in the datasets' metadata.

    Returns:
        list[int]: for keypoint i, the index of its mirror image (i itself if it has none).
    """
    meta = _shared_metadata(dataset_names, "keypoint_names", "keypoint_flip_map")
    mirror = dict(meta.keypoint_flip_map)
    mirror.update({right: left for left, right in meta.keypoint_flip_map})
    names = list(meta.keypoint_names)
    return [names.index(mirror.get(name, name)) for name in names]


def get_fed_loss_cls_weights(
    dataset_names: str | Sequence[str], freq_weight_power: float = 1.0
) -> torch.Tensor:
    """Per-class weights for a federated loss: ``image_count ** freq_weight_power``, read from
    the ``class_image_count`` metadata (a list of ``{"id", "image_count"}``), ordered by id.
    """
    counts = _shared_metadata(dataset_names, "class_image_count").class_image_count
    freq = torch.tensor([c["image_count"] for c in sorted(counts, key=lambda c: c["id"])])
    return freq.float() ** freq_weight_power


def gen_crop_transform_with_instance(
    crop_size: tuple[int, int], image_size: tuple[int, int], instance: dict
) -> T.CropTransform:
    """A random crop of ``crop_size`` that contains the center of ``instance``'s box.

    Args:
        crop_size (tuple[int, int]): (height, width) of the crop.
        image_size (tuple[int, int]): (height, width) of the image.
        instance (dict): an annotation with ``bbox`` and ``bbox_mode``.

    Raises:
        AssertionError: if the box center is outside the image or the crop is larger than it.
    """
    crop = np.asarray(crop_size, dtype=np.int64)
    x0, y0, x1, y1 = get_bbox(instance)
    center = np.array([(y0 + y1) * 0.5, (x0 + x1) * 0.5])
    assert (
        image_size[0] >= center[0] and image_size[1] >= center[1]
    ), f"The annotation bounding box is outside of the image of size {image_size}!"
    assert (
        image_size[0] >= crop[0] and image_size[1] >= crop[1]
    ), f"Crop size {tuple(crop_size)} is larger than image size {tuple(image_size)}!"
    # The top-left corner ranges over positions that keep the center inside and the crop
    # inside the image.
    low = np.maximum(np.floor(center).astype(np.int64) - crop, 0)
    high = np.maximum(np.asarray(image_size, dtype=np.int64) - crop, 0)
    high = np.minimum(high, np.ceil(center).astype(np.int64))
    top = np.random.randint(low[0], high[0] + 1)
    left = np.random.randint(low[1], high[1] + 1)
    return T.CropTransform(int(left), int(top), int(crop[1]), int(crop[0]))
