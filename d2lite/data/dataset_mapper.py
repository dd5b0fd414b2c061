"""``DatasetMapper``: turns one dataset dict into one model input dict."""

from __future__ import annotations

import copy
import logging
from typing import Any, Sequence

import numpy as np
import torch

from ..config import CfgNode
from . import detection_utils as utils
from . import transforms as T

__all__ = ["DatasetMapper"]

logger = logging.getLogger(__name__)


class DatasetMapper:
    """Read the image, augment it and its boxes, and build the model input.

    The output dict keeps the input's keys (``file_name``, ``image_id``, ``height``, ``width``)
    and adds ``image`` (``Tensor[C, H, W]`` uint8 in ``image_format`` channel order) and, in
    training, ``instances`` (``Instances`` with ``gt_boxes`` and ``gt_classes``). At test time
    annotations are dropped.

    Build it from a config, ``DatasetMapper(cfg, is_train=True)``, or explicitly,
    ``DatasetMapper(is_train=True, augmentations=[...], image_format="BGR")``; keyword arguments
    given with a config override what the config says.
    """

    def __init__(
        self,
        cfg: CfgNode | bool | None = None,
        is_train: bool | None = None,
        *,
        augmentations: Sequence[T.Augmentation | T.Transform] | None = None,
        image_format: str | None = None,
    ) -> None:
        """
        Args:
            cfg (CfgNode | bool | None): a config to read ``from_config`` from; a bool here is
                taken as ``is_train`` (explicit style). Defaults to None.
            is_train (bool | None): training mode. Defaults to None (True).
            augmentations (Sequence[Augmentation | Transform] | None): applied in order.
                Required without a config.
            image_format (str | None): "BGR", "RGB" or "L". Required without a config.
        """
        if isinstance(cfg, bool):
            cfg, is_train = None, cfg
        is_train = True if is_train is None else is_train
        if cfg is not None:
            defaults = self.from_config(cfg, is_train)
            augmentations = defaults["augmentations"] if augmentations is None else augmentations
            image_format = defaults["image_format"] if image_format is None else image_format
        if augmentations is None or image_format is None:
            raise TypeError("DatasetMapper needs a cfg, or both augmentations= and image_format=")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        mode = "training" if is_train else "inference"
        logger.info(f"[DatasetMapper] Augmentations used in {mode}: {self.augmentations}")

    @classmethod
    def from_config(cls, cfg: CfgNode, is_train: bool = True) -> dict[str, Any]:
        """Return the constructor arguments the config asks for.

        ``INPUT.CROP`` (training only) is applied before the resize and flip of
        ``build_augmentation``.
        """
        augs = utils.build_augmentation(cfg, is_train)
        if cfg.INPUT.CROP.ENABLED and is_train:
            augs.insert(0, T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
        return {"is_train": is_train, "augmentations": augs, "image_format": cfg.INPUT.FORMAT}

    def __call__(self, dataset_dict: dict) -> dict:
        """Map one dataset dict (not modified) to a model input dict."""
        dataset_dict = copy.deepcopy(dataset_dict)
        # USER: write your own image loading if it is not from a file.
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)

        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        image_shape = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            dataset_dict.pop("sem_seg_file_name", None)
            return dataset_dict

        if "annotations" in dataset_dict:
            annos = [
                utils.transform_instance_annotations(obj, transforms, image_shape)
                for obj in dataset_dict.pop("annotations")
                if obj.get("iscrowd", 0) == 0
            ]
            instances = utils.annotations_to_instances(annos, image_shape)
            dataset_dict["instances"] = utils.filter_empty_instances(instances)
        self._check_output(dataset_dict)
        return dataset_dict

    @staticmethod
    def _check_output(d: dict) -> None:
        img = d["image"]
        assert img.dim() == 3 and img.dtype == torch.uint8, (
            f"{d.get('file_name')}: mapped image must be a uint8 [C, H, W] tensor, got "
            f"{img.dtype} {tuple(img.shape)}"
        )
        if "instances" in d:
            inst = d["instances"]
            assert inst.image_size == tuple(img.shape[1:]), (
                f"{d.get('file_name')}: instances of size {inst.image_size} for an image of "
                f"size {tuple(img.shape[1:])}"
            )
            assert len(inst.gt_boxes) == len(inst.gt_classes)
