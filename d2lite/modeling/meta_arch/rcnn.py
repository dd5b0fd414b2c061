"""R-CNN meta-architectures: backbone -> proposal generator -> ROI heads.

N: images in the batch, C: image channels, H, W: padded image size, Hi, Wi: size of an input.
"""
from __future__ import annotations

import hashlib
import logging

import torch
from torch import Tensor, nn

from ...config import CfgNode, configurable
from ...layers import move_device_like
from ...structures import ImageList, Instances
from ...utils.events import event_storage_or_none
from ..backbone import Backbone, build_backbone
from ..postprocessing import detector_postprocess
from ..proposal_generator import build_proposal_generator
from ..roi_heads import build_roi_heads
from ..sampling import sampling_generators
from .build import META_ARCH_REGISTRY

__all__ = ["GeneralizedRCNN", "ProposalNetwork"]

logger = logging.getLogger(__name__)


def _check_inputs(batched_inputs: list[dict], need_instances: bool) -> None:
    """The model's input boundary: every dict has a 3-D "image" (and "instances" to train)."""
    if not isinstance(batched_inputs, (list, tuple)) or len(batched_inputs) == 0:
        raise TypeError(
            f"The model takes a non-empty list of dicts, got {type(batched_inputs).__name__}"
        )
    for i, x in enumerate(batched_inputs):
        if "image" not in x:
            raise KeyError(f"Model input {i} has no 'image' (keys: {sorted(x)})")
        if not isinstance(x["image"], Tensor) or x["image"].dim() != 3:
            shape = tuple(x["image"].shape) if isinstance(x["image"], Tensor) else type(x["image"])
            raise ValueError(f"Model input {i}: 'image' must be a (C, H, W) tensor, got {shape}")
        if need_instances and "instances" not in x:
            raise KeyError(
                f"Model input {i} has no 'instances'; a model in training mode needs the "
                f"ground truth (keys: {sorted(x)})"
            )


def _postprocess_all(
    results: list[Instances],
    batched_inputs: list[dict],
    image_sizes: list[tuple[int, int]],
    key: str,
) -> list[dict]:
    """Rescales each image's results to the "height"/"width" its input asked for."""
    return [
        {key: detector_postprocess(results_i, x.get("height", size[0]), x.get("width", size[1]))}
        for results_i, x, size in zip(results, batched_inputs, image_sizes)
    ]


def _sampling_seed(iteration: int, image_id: object) -> int:
    """Returns the seed of an image's label sampling at an iteration: a stable hash (the same
    in every process and run, unlike ``hash()`` of a string) of both."""
    digest = hashlib.blake2b(f"{iteration}/{image_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # 63 bits: any torch.Generator takes it


def _per_image_generators(
    batched_inputs: list[dict], device: torch.device
) -> list[torch.Generator] | None:
    """One generator per image, seeded by the trainer's iteration and the image's "image_id",
    so that an image's sampled anchors and proposals do not depend on which images share its
    batch or its process: 2 processes of 1 image then train as 1 process of 2. None (torch's
    global RNG, as in Detectron2) outside an event storage or when an input has no id.
    """
    storage = event_storage_or_none()
    if storage is None or not all("image_id" in x for x in batched_inputs):
        return None
    return [
        torch.Generator(device=device).manual_seed(_sampling_seed(storage.iter, x["image_id"]))
        for x in batched_inputs
    ]


class _ImageNormalizer(nn.Module):
    """Pixel normalisation and padding shared by the meta-architectures."""

    backbone: Backbone

    def _init_pixel_stats(self, pixel_mean: list[float], pixel_std: list[float]) -> None:
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(
                f"MODEL.PIXEL_MEAN {list(pixel_mean)} and MODEL.PIXEL_STD {list(pixel_std)} "
                "differ in length"
            )
        # Not persistent: they come from the config, and Detectron2 checkpoints lack them.
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        """The device of the model (of its buffers)."""
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalises, pads and batches the input images."""
        images = [move_device_like(x["image"], self.pixel_mean) for x in batched_inputs]
        images = [(x - self.pixel_mean) / self.pixel_std for x in images]
        return ImageList.from_tensors(
            images,
            self.backbone.size_divisibility,
            padding_constraints=self.backbone.padding_constraints,
        )


@META_ARCH_REGISTRY.register()
class GeneralizedRCNN(_ImageNormalizer):
    """Faster R-CNN and its relatives: backbone features, proposals, per-ROI predictions."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        proposal_generator: nn.Module | None,
        roi_heads: nn.Module,
        pixel_mean: list[float],
        pixel_std: list[float],
        input_format: str | None = None,
        vis_period: int = 0,
    ) -> None:
        """
        Args:
            backbone (Backbone): maps the image batch to named feature maps.
            proposal_generator (nn.Module | None): the RPN; None when the inputs carry
                precomputed "proposals".
            roi_heads (nn.Module): predicts boxes from features and proposals.
            pixel_mean (list[float]): per-channel mean subtracted from the input images.
            pixel_std (list[float]): per-channel std the images are divided by.
            input_format (str | None): channel order of the inputs ("BGR", "RGB"); recorded
                for tools. Defaults to None.
            vis_period (int): Detectron2's period of training pictures, kept in the signature
                (and as an attribute) for code written against it; d2lite reads neither it nor
                ``cfg.VIS_PERIOD``, as it draws training pictures in the engine. Defaults to 0.
        """
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.input_format = input_format
        self.vis_period = vis_period
        self._init_pixel_stats(pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        for key in ("MASK_ON", "KEYPOINT_ON"):
            if cfg.MODEL.get(key):
                raise ValueError(
                    f"MODEL.{key}=True is not supported: d2lite builds box detectors only"
                )
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "roi_heads": build_roi_heads(cfg, backbone.output_shape()),
            "input_format": cfg.INPUT.FORMAT,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    def forward(self, batched_inputs: list[dict]) -> dict[str, Tensor] | list[dict]:
        """
        Args:
            batched_inputs (list[dict]): per image, "image" (Tensor[C, Hi, Wi] in
                ``input_format``), "instances" (Instances with ``gt_boxes``, ``gt_classes``;
                training only), optional "height"/"width" of the wanted output and optional
                "proposals". In training inside an event storage, the "image_id"s of the inputs
                (all or none) seed each image's label sampling (see ``_per_image_generators``).

        Returns:
            In training, dict[str, Tensor]: ``loss_rpn_cls``, ``loss_rpn_loc``, ``loss_cls``,
            ``loss_box_reg``. In eval mode, the output of :meth:`inference`.
        """
        if not self.training:
            return self.inference(batched_inputs)
        _check_inputs(batched_inputs, need_instances=True)
        images = self.preprocess_image(batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        features = self.backbone(images.tensor)
        with sampling_generators(_per_image_generators(batched_inputs, self.device)):
            proposals, proposal_losses = self._proposals(
                images, features, batched_inputs, gt_instances
            )
            _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        return {**detector_losses, **proposal_losses}

    def _proposals(
        self,
        images: ImageList,
        features: dict[str, Tensor],
        batched_inputs: list[dict],
        gt_instances: list[Instances] | None,
    ) -> tuple[list[Instances], dict[str, Tensor]]:
        if self.proposal_generator is not None:
            return self.proposal_generator(images, features, gt_instances)
        if "proposals" not in batched_inputs[0]:
            raise KeyError("Without a proposal generator every input needs 'proposals'")
        return [x["proposals"].to(self.device) for x in batched_inputs], {}

    def inference(
        self,
        batched_inputs: list[dict],
        detected_instances: list[Instances] | None = None,
        do_postprocess: bool = True,
    ) -> list[dict] | list[Instances]:
        """Detects objects in the inputs (the model must be in eval mode).

        Args:
            batched_inputs (list[dict]): as in :meth:`forward`; "instances" is not needed.
            detected_instances (list[Instances] | None): known boxes per image; when given,
                only the heads after the box branch run on them. Defaults to None.
            do_postprocess (bool): rescale the results to each input's "height"/"width".
                Defaults to True.

        Returns:
            list[dict]: per image {"instances": Instances(pred_boxes, scores, pred_classes)}
            if ``do_postprocess``, else the list of Instances in the padded input's frame.
        """
        assert not self.training, "inference() needs the model in eval mode"
        _check_inputs(batched_inputs, need_instances=False)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        if detected_instances is None:
            proposals, _ = self._proposals(images, features, batched_inputs, None)
            results, _ = self.roi_heads(images, features, proposals, None)
        else:
            detected_instances = [x.to(self.device) for x in detected_instances]
            results = self.roi_heads.forward_with_given_boxes(features, detected_instances)
        if do_postprocess:
            return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
        return results

    @staticmethod
    def _postprocess(
        instances: list[Instances], batched_inputs: list[dict], image_sizes: list[tuple[int, int]]
    ) -> list[dict]:
        """Rescales the raw detections to the output resolution of each input (also called by
        Detectron2's export wrappers, hence a static method)."""
        return _postprocess_all(instances, batched_inputs, image_sizes, "instances")


@META_ARCH_REGISTRY.register()
class ProposalNetwork(_ImageNormalizer):
    """A backbone and a proposal generator only: class-agnostic proposals (RPN-only models)."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        proposal_generator: nn.Module,
        pixel_mean: list[float],
        pixel_std: list[float],
    ) -> None:
        """
        Args:
            backbone (Backbone): maps the image batch to named feature maps.
            proposal_generator (nn.Module): the RPN.
            pixel_mean (list[float]): per-channel mean subtracted from the input images.
            pixel_std (list[float]): per-channel std the images are divided by.
        """
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self._init_pixel_stats(pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    def forward(self, batched_inputs: list[dict]) -> dict[str, Tensor] | list[dict]:
        """
        Returns:
            In training, the RPN losses; in eval mode, per image {"proposals": Instances} with
            ``proposal_boxes`` and ``objectness_logits`` rescaled to the input's height/width.
        """
        _check_inputs(batched_inputs, need_instances=self.training)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        gt_instances = None
        if "instances" in batched_inputs[0]:
            gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        generators = _per_image_generators(batched_inputs, self.device) if self.training else None
        with sampling_generators(generators):
            proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        if self.training:
            return proposal_losses
        return _postprocess_all(proposals, batched_inputs, images.image_sizes, "proposals")
