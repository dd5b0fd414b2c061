"""``DefaultPredictor``: a model from a config, ready to run on one BGR image."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from d2lite.checkpoint import DetectionCheckpointer
from d2lite.config import CfgNode, check_cfg_keys
from d2lite.config.training_checks import check_weights_settings
from d2lite.data import MetadataCatalog
from d2lite.data import transforms as T
from d2lite.modeling import build_model

__all__ = ["DefaultPredictor", "prepare_for_inference"]


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """Puts ``model`` in eval mode and lays out its conv weights for fast inference.

    On the CPU the 4-D weights become channels_last, which the oneDNN convolutions run faster
    (the activations follow the weights' layout); training stays channels-first, where this
    layout is slower. Only strides change: parameter names and values, hence checkpoints and
    results, are the same (up to float rounding).

    Args:
        model (nn.Module): e.g. a ``GeneralizedRCNN``; changed in place.

    Returns:
        nn.Module: ``model`` itself.
    """
    model.eval()
    device = next(iter(model.parameters())).device
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model


class DefaultPredictor:
    """Runs the model of ``cfg`` with ``MODEL.WEIGHTS`` on one image.

    Args:
        cfg (CfgNode): the config; ``INPUT.MIN_SIZE_TEST``/``MAX_SIZE_TEST`` set the resize.

    Examples:
        >>> pred = DefaultPredictor(cfg)
        >>> outputs = pred(np.asarray(Image.open("input.jpg"))[:, :, ::-1])  # BGR
    """

    def __init__(self, cfg: CfgNode) -> None:
        # As DefaultTrainer does: a typo'd key warns, a number key holding text is named.
        check_cfg_keys(cfg)
        self.cfg = cfg.clone()
        # torchvision ResNet weights need RGB input and ImageNet's mean/std: set on the copy.
        check_weights_settings(self.cfg)
        self.model = build_model(self.cfg)
        if len(cfg.DATASETS.TEST):
            self.metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        prepare_for_inference(self.model)
        self.aug = T.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        self.input_format = self.cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT must be 'RGB' or 'BGR', got {self.input_format!r}.")

    def __call__(self, original_image: np.ndarray) -> dict:
        """Detects objects in one image.

        Args:
            original_image (np.ndarray[H, W, 3]): a uint8 image in BGR order.

        Returns:
            dict: ``{"instances": Instances}`` in the original image's coordinates.
        """
        if not isinstance(original_image, np.ndarray) or original_image.ndim != 3:
            raise ValueError(
                "DefaultPredictor expects an np.ndarray of shape (H, W, 3), got "
                f"{getattr(original_image, 'shape', type(original_image))}."
            )
        if original_image.shape[2] != 3:
            raise ValueError(f"Expected 3 channels (BGR), got shape {original_image.shape}.")
        if self.input_format == "RGB":
            original_image = original_image[:, :, ::-1]
        height, width = original_image.shape[:2]
        image = self.aug.get_transform(original_image).apply_image(original_image)
        image = torch.as_tensor(np.ascontiguousarray(image.astype("float32").transpose(2, 0, 1)))
        # no_grad, as Detectron2, not inference_mode: callers may edit the outputs in place.
        with torch.no_grad():
            return self.model([{"image": image, "height": height, "width": width}])[0]
