"""Test-time augmentation: detect on resized and flipped copies of an image, merge the boxes.

N: augmented copies of one image (``len(TEST.AUG.MIN_SIZES) * (2 if TEST.AUG.FLIP else 1)``),
R: detections over all copies, K: foreground classes.

``GeneralizedRCNNWithTTA(cfg, model)`` wraps a trained ``GeneralizedRCNN`` and has the same
inference interface; Detectron2's ``tools/train_net.py`` uses it for ``TEST.AUG.ENABLED``. Boxes
found on every copy are mapped back to the original image and merged with the per-class NMS of
the box head, with the thresholds of the config (the score threshold is dropped to 1e-8: the
copies already applied it).
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..config import CfgNode, configurable
from ..data import transforms as T
from ..data.detection_utils import read_image
from ..structures import Instances
from .meta_arch import GeneralizedRCNN
from .roi_heads.fast_rcnn import fast_rcnn_inference_single_image

__all__ = ["DatasetMapperTTA", "GeneralizedRCNNWithTTA"]


class DatasetMapperTTA:
    """Turns one model input dict into its augmented copies, each with the transforms used.

    Every copy is resized so its shortest edge is one of ``min_sizes`` (longest edge at most
    ``max_size``), and, with ``flip``, also flipped horizontally.
    """

    @configurable
    def __init__(self, min_sizes: Sequence[int], max_size: int, flip: bool) -> None:
        """
        Args:
            min_sizes (Sequence[int]): shortest-edge lengths of the copies.
            max_size (int): the longest edge of any copy is capped to this.
            flip (bool): also add a horizontally flipped copy of each size.
        """
        self.min_sizes = min_sizes
        self.max_size = max_size
        self.flip = flip

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        aug = cfg.TEST.AUG
        return {"min_sizes": aug.MIN_SIZES, "max_size": aug.MAX_SIZE, "flip": aug.FLIP}

    def __call__(self, dataset_dict: dict) -> list[dict]:
        """
        Args:
            dataset_dict (dict): a model input with "image" (Tensor[C, H, W]) and the original
                "height" and "width".

        Returns:
            list[dict]: the copies; each has "image" and "transforms" (a ``TransformList``
            from the original image to that copy).
        """
        image = dataset_dict["image"].permute(1, 2, 0).numpy()
        orig_h, orig_w = dataset_dict["height"], dataset_dict["width"]
        # The input may already be resized (a test loader's mapper): start from the original.
        if image.shape[:2] != (orig_h, orig_w):
            first: T.Transform = T.ResizeTransform(orig_h, orig_w, image.shape[0], image.shape[1])
        else:
            first = T.NoOpTransform()
        plans = []
        for size in self.min_sizes:
            resize = T.ResizeShortestEdge(size, self.max_size)
            plans.append([resize])
            if self.flip:
                plans.append([resize, T.RandomFlip(prob=1.0)])
        copies = []
        for augs in plans:
            new_image, tfms = T.apply_augmentations(augs, np.copy(image))
            out = copy.deepcopy(dataset_dict)
            out["image"] = torch.from_numpy(np.ascontiguousarray(new_image.transpose(2, 0, 1)))
            out["transforms"] = T.TransformList([first, *tfms.transforms])
            copies.append(out)
        return copies


class GeneralizedRCNNWithTTA(nn.Module):
    """A ``GeneralizedRCNN`` that detects with test-time augmentation.

    Calling it takes and returns what ``GeneralizedRCNN.forward`` does in eval mode:
    ``list[dict]`` inputs (with "image", or only "file_name") and ``[{"instances": ...}]``.
    """

    def __init__(
        self,
        cfg: CfgNode,
        model: GeneralizedRCNN,
        tta_mapper: DatasetMapperTTA | None = None,
        batch_size: int = 3,
    ) -> None:
        """
        Args:
            cfg (CfgNode): reads ``TEST.AUG.*``, ``MODEL.ROI_HEADS.NUM_CLASSES``,
                ``MODEL.ROI_HEADS.NMS_THRESH_TEST`` and ``TEST.DETECTIONS_PER_IMAGE``.
            model (GeneralizedRCNN): the model (a DistributedDataParallel is unwrapped).
            tta_mapper (DatasetMapperTTA | None): makes the augmented copies. Defaults to None
                (``DatasetMapperTTA(cfg)``).
            batch_size (int): copies run through the model at once. Defaults to 3.
        """
        super().__init__()
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if not isinstance(model, GeneralizedRCNN):
            raise TypeError(f"TTA needs a GeneralizedRCNN, got {type(model).__name__}")
        if cfg.MODEL.LOAD_PROPOSALS:
            raise NotImplementedError("TTA with precomputed proposals is not supported")
        self.cfg = cfg.clone()
        self.model = model
        self.tta_mapper = DatasetMapperTTA(cfg) if tta_mapper is None else tta_mapper
        self.batch_size = batch_size

    def _batch_inference(self, inputs: list[dict]) -> list[Instances]:
        """Runs the model on ``inputs`` in chunks of ``batch_size``, without postprocessing."""
        outputs: list[Instances] = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            outputs.extend(self.model.inference(chunk, do_postprocess=False))
        return outputs

    def _read_if_needed(self, dataset_dict: dict) -> dict:
        out = copy.copy(dataset_dict)
        if "image" not in out:
            image = read_image(out.pop("file_name"), self.model.input_format)
            out["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        out.setdefault("height", out["image"].shape[1])
        out.setdefault("width", out["image"].shape[2])
        return out

    def __call__(self, batched_inputs: list[dict]) -> list[dict]:
        return [self._inference_one_image(self._read_if_needed(x)) for x in batched_inputs]

    def _inference_one_image(self, inputs: dict) -> dict:
        copies = self.tta_mapper(inputs)
        tfms = [c.pop("transforms") for c in copies]
        boxes, scores, classes = self._boxes_in_original_frame(copies, tfms)
        merged = self._merge(boxes, scores, classes, (inputs["height"], inputs["width"]))
        return {"instances": merged}

    def _boxes_in_original_frame(
        self, copies: list[dict], tfms: list[T.TransformList]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Boxes (Tensor[R, 4]), scores (Tensor[R]) and classes (Tensor[R]) of all copies."""
        boxes, scores, classes = [], [], []
        for result, tfm in zip(self._batch_inference(copies), tfms):
            pred = result.pred_boxes.tensor
            back = tfm.inverse().apply_box(pred.detach().cpu().numpy())
            boxes.append(torch.as_tensor(back, dtype=pred.dtype, device=pred.device))
            scores.append(result.scores)
            classes.append(result.pred_classes)
        return torch.cat(boxes), torch.cat(scores), torch.cat(classes)

    def _merge(
        self, boxes: Tensor, scores: Tensor, classes: Tensor, image_hw: tuple[int, int]
    ) -> Instances:
        """Per-class NMS over the detections of all copies, as the box head's inference does."""
        num_classes = self.cfg.MODEL.ROI_HEADS.NUM_CLASSES
        # One score column per class plus background; each detection scores only its class.
        dense = torch.zeros(len(boxes), num_classes + 1, device=boxes.device, dtype=scores.dtype)
        dense[torch.arange(len(boxes), device=boxes.device), classes] = scores
        merged, _ = fast_rcnn_inference_single_image(
            boxes,
            dense,
            image_hw,
            1e-8,
            self.cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            self.cfg.TEST.DETECTIONS_PER_IMAGE,
        )
        return merged
