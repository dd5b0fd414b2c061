"""``DatasetMapper``: turns one dataset dict into one model input dict."""

from __future__ import annotations

import copy
import logging
from typing import Any, Sequence

import numpy as np
import torch

from ..config import CfgNode, configurable
from . import detection_utils as utils
from . import transforms as T

__all__ = ["DatasetMapper"]

logger = logging.getLogger(__name__)


class DatasetMapper:
    """Read the image, augment it and its boxes, and build the model input.

    The output dict keeps the input's keys (``file_name``, ``image_id``, ``height``, ``width``)
    and adds ``image`` (``Tensor[C, H, W]`` uint8 in ``image_format`` channel order), in
    training ``instances`` (``Instances`` with ``gt_boxes`` and ``gt_classes``), and
    ``proposals`` when precomputed proposals are used. At test time annotations are dropped.

    Build it from a config, ``DatasetMapper(cfg, is_train=True)``, or explicitly,
    ``DatasetMapper(is_train=True, augmentations=[...], image_format="BGR")``; keyword arguments
    given with a config override what the config says.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: Sequence[T.Augmentation | T.Transform],
        image_format: str,
        use_instance_mask: bool = False,
        use_keypoint: bool = False,
        instance_mask_format: str = "polygon",
        keypoint_hflip_indices: np.ndarray | None = None,
        precomputed_proposal_topk: int | None = None,
        recompute_boxes: bool = False,
    ) -> None:
        """
        Args:
            is_train (bool): training (annotations become ``instances``) or inference.
            augmentations (Sequence[Augmentation | Transform]): applied in order.
            image_format (str): "BGR", "RGB", "L" or another format of ``read_image``.
            use_instance_mask (bool): must be False: d2lite has no masks. Defaults to False.
            use_keypoint (bool): must be False: d2lite has no keypoints. Defaults to False.
            instance_mask_format (str): kept for Detectron2's signature. Defaults to "polygon".
            keypoint_hflip_indices (np.ndarray | None): kept for Detectron2's signature.
                Defaults to None.
            precomputed_proposal_topk (int | None): if given, turn the dict's precomputed
                proposals into ``proposals``, keeping the k best. Defaults to None.
            recompute_boxes (bool): must be False (it recomputes boxes from masks).
                Defaults to False.

        Raises:
            NotImplementedError: if masks, keypoints or ``recompute_boxes`` are asked for.
        """
        unsupported = {
            "use_instance_mask": (use_instance_mask, "instance masks"),
            "use_keypoint": (use_keypoint, "keypoints"),
            "recompute_boxes": (recompute_boxes, "boxes recomputed from instance masks"),
        }
        for arg, (value, what) in unsupported.items():
            if value:
                raise NotImplementedError(
                    f"DatasetMapper({arg}=True): {what} are not implemented in d2lite, which "
                    f"detects boxes only (set MODEL.MASK_ON / MODEL.KEYPOINT_ON to False)."
                )
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.use_instance_mask = use_instance_mask
        self.use_keypoint = use_keypoint
        self.instance_mask_format = instance_mask_format
        self.keypoint_hflip_indices = keypoint_hflip_indices
        self.proposal_topk = precomputed_proposal_topk
        self.recompute_boxes = recompute_boxes
        mode = "training" if is_train else "inference"
        logger.info(f"[DatasetMapper] Augmentations used in {mode}: {self.augmentations}")

    @classmethod
    def from_config(cls, cfg: CfgNode, is_train: bool = True) -> dict[str, Any]:
        """Return the constructor arguments the config asks for.

        ``INPUT.CROP`` (training only) is applied before the resize and flip of
        ``build_augmentation``.
        """
        augs = utils.build_augmentation(cfg, is_train)
        crop = cfg.INPUT.CROP.ENABLED and is_train
        if crop:
            augs.insert(0, T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
        ret = {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "use_instance_mask": cfg.MODEL.MASK_ON,
            "instance_mask_format": cfg.INPUT.MASK_FORMAT,
            # Keypoint flip indices are not computed: __init__ refuses keypoints anyway.
            "use_keypoint": cfg.MODEL.KEYPOINT_ON,
            "recompute_boxes": crop and cfg.MODEL.MASK_ON,
        }
        if cfg.MODEL.LOAD_PROPOSALS:
            ret["precomputed_proposal_topk"] = (
                cfg.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN
                if is_train
                else cfg.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST
            )
        return ret

    def _transform_annotations(
        self, dataset_dict: dict, transforms: T.TransformList, image_shape: tuple[int, int]
    ) -> None:
        # USER: keep "segmentation" / "keypoints" here if your own mapper needs them.
        for anno in dataset_dict["annotations"]:
            anno.pop("segmentation", None)
            anno.pop("keypoints", None)
        annos = [
            utils.transform_instance_annotations(obj, transforms, image_shape)
            for obj in dataset_dict.pop("annotations")
            if obj.get("iscrowd", 0) == 0
        ]
        instances = utils.annotations_to_instances(annos, image_shape)
        dataset_dict["instances"] = utils.filter_empty_instances(instances)

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
        # A tensor, not an array: DataLoader workers pass tensors through shared memory.
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if self.proposal_topk is not None:
            utils.transform_proposals(
                dataset_dict, image_shape, transforms, proposal_topk=self.proposal_topk
            )

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            dataset_dict.pop("sem_seg_file_name", None)
            return dataset_dict
        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image_shape)
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
