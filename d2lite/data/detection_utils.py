"""Helpers a mapper uses: read an image, check its size, transform annotations, build Instances."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from ..config import CfgNode
from ..structures import Boxes, BoxMode, Instances
from . import transforms as T
from .catalog import MetadataCatalog

__all__ = [
    "SizeMismatchError",
    "convert_PIL_to_numpy",
    "read_image",
    "check_image_size",
    "transform_instance_annotations",
    "annotations_to_instances",
    "filter_empty_instances",
    "build_augmentation",
    "build_transform_gen",
    "check_metadata_consistency",
]

logger = logging.getLogger(__name__)


class SizeMismatchError(ValueError):
    """An image's real size differs from the height/width its dataset dict claims."""


def convert_PIL_to_numpy(image: Image.Image, format: str | None) -> np.ndarray:
    """Convert a PIL image to an HWC numpy array in ``format``.

    Args:
        image (Image.Image): any PIL mode (RGB, L, P, RGBA, CMYK...).
        format (str | None): "BGR", "RGB", "L" or another PIL mode. Defaults to RGB when None.

    Returns:
        np.ndarray[H, W, C]: uint8; C is 1 for "L".
    """
    target = "RGB" if format in (None, "BGR") else format
    if image.mode == "P" and target != "P":
        # Palette images may carry transparency; going through RGBA avoids PIL's warning.
        image = image.convert("RGBA")
    if image.mode != target:
        image = image.convert(target)
    array = np.array(image)  # writable, so torch can wrap it without a warning
    if array.ndim == 2:
        array = np.expand_dims(array, -1)
    if format == "BGR":
        array = array[:, :, ::-1]
    return array


def read_image(file_name: str, format: str | None = None) -> np.ndarray:
    """Read an image file, applying its EXIF orientation.

    Args:
        file_name (str): path to the image.
        format (str | None): "BGR", "RGB", "L" or another PIL mode. Defaults to None (RGB).

    Returns:
        np.ndarray[H, W, C]: uint8 image (C = 1 for "L", 3 for RGB/BGR).

    Raises:
        FileNotFoundError: if the file does not exist.
        OSError: if the file is not a readable image; the message names the path.
    """
    try:
        with open(file_name, "rb") as f:
            image = Image.open(f)
            # Phone photos store rotation in EXIF; without this, boxes drawn on the upright view
            # would not match the pixels.
            image = ImageOps.exif_transpose(image)
            return convert_PIL_to_numpy(image, format)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"Image file not found: {file_name}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise OSError(f"Cannot read image file {file_name}: {e}") from e


def check_image_size(dataset_dict: dict, image: np.ndarray) -> None:
    """Check the image against the dict's ``height``/``width``, filling them in when missing.

    Raises:
        SizeMismatchError: (a ValueError) naming the file and both (width, height) sizes.
    """
    image_wh = (image.shape[1], image.shape[0])
    if "width" in dataset_dict or "height" in dataset_dict:
        expected_wh = (
            dataset_dict.get("width", image_wh[0]),
            dataset_dict.get("height", image_wh[1]),
        )
        if image_wh != expected_wh:
            raise SizeMismatchError(
                f"Mismatched image shape for image {dataset_dict.get('file_name', '<unknown>')}: "
                f"got (width, height) = {image_wh}, expected {expected_wh} from the annotations. "
                f"Please check the width/height in your annotation."
            )
    dataset_dict.setdefault("width", image_wh[0])
    dataset_dict.setdefault("height", image_wh[1])


def transform_instance_annotations(
    annotation: dict,
    transforms: T.TransformList | Sequence[T.Transform],
    image_size: tuple[int, int],
    *,
    keypoint_hflip_indices: np.ndarray | None = None,
) -> dict:
    """Apply ``transforms`` to one annotation's box (in place) and clip it to the image.

    d2lite detects boxes only: ``segmentation`` and ``keypoints`` are removed rather than left
    untransformed, and ``keypoint_hflip_indices`` is accepted for Detectron2 compatibility only.

    Args:
        annotation (dict): with ``bbox`` and ``bbox_mode``.
        transforms (TransformList | Sequence[Transform]): what was applied to the image.
        image_size (tuple[int, int]): (height, width) of the transformed image.
        keypoint_hflip_indices (np.ndarray | None): unused. Defaults to None.

    Returns:
        dict: the annotation, with ``bbox`` a ``np.ndarray[4]`` in XYXY_ABS.
    """
    if isinstance(transforms, (tuple, list)):
        transforms = T.TransformList(transforms)
    bbox = BoxMode.convert(
        _as_box_array(annotation["bbox"]), annotation["bbox_mode"], BoxMode.XYXY_ABS
    )
    bbox = transforms.apply_box(bbox)[0].clip(min=0)
    h, w = image_size
    annotation["bbox"] = np.minimum(bbox, [w, h, w, h])
    annotation["bbox_mode"] = BoxMode.XYXY_ABS
    annotation.pop("segmentation", None)
    annotation.pop("keypoints", None)
    return annotation


def _as_box_array(bbox: Any) -> np.ndarray:
    return np.asarray(bbox, dtype=np.float64).reshape(1, 4)


def annotations_to_instances(
    annos: list[dict], image_size: tuple[int, int], mask_format: str = "polygon"
) -> Instances:
    """Build the ``Instances`` a model trains on from (transformed) annotations.

    Args:
        annos (list[dict]): annotations with ``bbox``, ``bbox_mode`` and ``category_id``; may be
            empty.
        image_size (tuple[int, int]): (height, width).
        mask_format (str): accepted for Detectron2 compatibility; d2lite has no masks.
            Defaults to "polygon".

    Returns:
        Instances: with ``gt_boxes (Boxes)`` and ``gt_classes (Tensor[N] int64)``.
    """
    boxes = [
        BoxMode.convert(_as_box_array(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS)[0]
        for a in annos
    ]
    target = Instances(image_size)
    target.gt_boxes = Boxes(np.stack(boxes).astype(np.float32) if boxes else np.zeros((0, 4)))
    target.gt_classes = torch.tensor([int(a["category_id"]) for a in annos], dtype=torch.int64)
    return target


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
    keep = []
    if by_box:
        keep.append(instances.gt_boxes.nonempty(threshold=box_threshold))
    if by_mask and instances.has("gt_masks"):
        keep.append(instances.gt_masks.nonempty())
    if not keep:
        if return_mask:
            return instances, torch.ones(len(instances), dtype=torch.bool)
        return instances
    m = keep[0]
    for x in keep[1:]:
        m = m & x
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
        ValueError: naming the key and the two disagreeing datasets.
    """
    if len(dataset_names) == 0:
        return
    entries = [MetadataCatalog.get(d).get(key) for d in dataset_names]
    for name, entry in zip(dataset_names, entries):
        if entry != entries[0]:
            raise ValueError(
                f"Datasets have different metadata '{key}'! '{dataset_names[0]}' has {entries[0]}"
                f" but '{name}' has {entry}"
            )
