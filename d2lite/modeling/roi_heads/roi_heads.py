"""ROI heads: sample proposals against the ground truth, pool their features, predict boxes.

N: images, R: proposals per image (after sampling in training), K: foreground classes,
C: channels, S: pooler output size.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from ...config import CfgNode, configurable
from ...layers import ShapeSpec
from ...structures import Boxes, ImageList, Instances, pairwise_iou
from ...utils.events import event_storage_or_none
from ..backbone.resnet import BottleneckBlock, ResNet
from ..matcher import Matcher
from ..poolers import ROIPooler
from ..proposal_generator.proposal_utils import add_ground_truth_to_proposals
from ..registry import ROI_HEADS_REGISTRY, build_registered
from ..sampling import get_sampling_generator, subsample_labels
from .box_head import build_box_head
from .fast_rcnn import FastRCNNOutputLayers

__all__ = [
    "ROI_HEADS_REGISTRY",
    "ROIHeads",
    "Res5ROIHeads",
    "StandardROIHeads",
    "build_roi_heads",
    "select_foreground_proposals",
]

logger = logging.getLogger(__name__)

def build_roi_heads(cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> nn.Module:
    """Builds ``cfg.MODEL.ROI_HEADS.NAME``."""
    return build_registered(ROI_HEADS_REGISTRY, cfg.MODEL.ROI_HEADS.NAME, cfg, input_shape)


def select_foreground_proposals(
    proposals: list[Instances], bg_label: int
) -> tuple[list[Instances], list[Tensor]]:
    """Keeps the foreground proposals of each image (for extra heads that train on them only).

    Args:
        proposals (list[Instances]): per image, sampled proposals with ``gt_classes``.
        bg_label (int): the background class (K).

    Returns:
        fg_proposals (list[Instances]): per image, the proposals of a foreground class.
        fg_selection_masks (list[Tensor[R]]): per image, the bool mask that selected them.
    """
    fg_masks = [(p.gt_classes != -1) & (p.gt_classes != bg_label) for p in proposals]
    fg_proposals = [p[torch.nonzero(m, as_tuple=True)[0]] for p, m in zip(proposals, fg_masks)]
    return fg_proposals, fg_masks


def _box_pooler(
    cfg: CfgNode, input_shape: dict[str, ShapeSpec], in_features: list[str]
) -> ROIPooler:
    """The ``ROIPooler`` that ``MODEL.ROI_BOX_HEAD`` describes, over ``in_features``."""
    head = cfg.MODEL.ROI_BOX_HEAD
    return ROIPooler(
        output_size=head.POOLER_RESOLUTION,
        scales=tuple(1.0 / input_shape[k].stride for k in in_features),
        sampling_ratio=head.POOLER_SAMPLING_RATIO,
        pooler_type=head.POOLER_TYPE,
    )


class ROIHeads(nn.Module):
    """The part of an ROI head shared by all of them: matching and sampling the proposals.

    Subclasses implement ``forward(images, features, proposals, targets=None)``, returning
    (detections or sampled proposals, losses); ``nn.Module`` raises NotImplementedError here.
    """

    @configurable
    def __init__(
        self,
        *,
        num_classes: int,
        batch_size_per_image: int,
        positive_fraction: float,
        proposal_matcher: Matcher,
        proposal_append_gt: bool = True,
    ) -> None:
        """
        Args:
            num_classes (int): K, foreground classes; K is also the background label.
            batch_size_per_image (int): proposals sampled per image for the losses.
            positive_fraction (float): largest share of foreground among them.
            proposal_matcher (Matcher): labels proposals by their IoU with the ground truth.
            proposal_append_gt (bool): add the GT boxes to the proposals. Defaults to True.
        """
        super().__init__()
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.num_classes = num_classes
        self.proposal_matcher = proposal_matcher
        self.proposal_append_gt = proposal_append_gt

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec] | None = None) -> dict:
        for key in ("MASK_ON", "KEYPOINT_ON"):
            if cfg.MODEL.get(key):
                # Detectron2 would add that head; refusing would break box-only use of the config.
                logger.warning(f"MODEL.{key}=True ignored: {cls.__name__} predicts boxes only")
        heads = cfg.MODEL.ROI_HEADS
        return {
            "batch_size_per_image": heads.BATCH_SIZE_PER_IMAGE,
            "positive_fraction": heads.POSITIVE_FRACTION,
            "num_classes": heads.NUM_CLASSES,
            "proposal_append_gt": heads.PROPOSAL_APPEND_GT,
            "proposal_matcher": Matcher(
                heads.IOU_THRESHOLDS, heads.IOU_LABELS, allow_low_quality_matches=False
            ),
        }

    def _sample_proposals(
        self,
        matched_idxs: Tensor,
        matched_labels: Tensor,
        gt_classes: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Returns the indices of the sampled proposals and their classes (K = background),
        drawn from ``generator`` (defaults to None: torch's global RNG)."""
        if gt_classes.numel() > 0:
            gt_classes = gt_classes[matched_idxs]
            gt_classes[matched_labels == 0] = self.num_classes
            gt_classes[matched_labels == -1] = -1
        else:
            gt_classes = torch.zeros_like(matched_idxs) + self.num_classes
        fg_idxs, bg_idxs = subsample_labels(
            gt_classes,
            self.batch_size_per_image,
            self.positive_fraction,
            self.num_classes,
            generator=generator,
        )
        sampled_idxs = torch.cat([fg_idxs, bg_idxs], dim=0)
        return sampled_idxs, gt_classes[sampled_idxs]

    @torch.no_grad()
    def label_and_sample_proposals(
        self, proposals: list[Instances], targets: list[Instances]
    ) -> list[Instances]:
        """Samples the proposals of each image and attaches their training targets (the i-th
        image drawn from ``get_sampling_generator(i)``, see ``modeling.sampling``).

        Args:
            proposals (list[Instances]): per image, ``proposal_boxes`` and ``objectness_logits``.
            targets (list[Instances]): per image, ``gt_boxes`` and ``gt_classes`` (maybe empty).

        Returns:
            list[Instances]: per image, at most ``batch_size_per_image`` proposals with
            ``gt_classes`` (K for background) and ``gt_boxes`` (zeros without ground truth),
            plus every other ``gt_*`` field of the targets.
        """
        if self.proposal_append_gt:
            proposals = add_ground_truth_to_proposals(targets, proposals)
        sampled, num_fg, num_bg = [], [], []
        for i, (proposals_i, targets_i) in enumerate(zip(proposals, targets)):
            iou = pairwise_iou(targets_i.gt_boxes, proposals_i.proposal_boxes)
            matched_idxs, matched_labels = self.proposal_matcher(iou)
            sampled_idxs, gt_classes = self._sample_proposals(
                matched_idxs, matched_labels, targets_i.gt_classes, get_sampling_generator(i)
            )
            proposals_i = proposals_i[sampled_idxs]
            proposals_i.gt_classes = gt_classes
            if len(targets_i) > 0:
                sampled_targets = matched_idxs[sampled_idxs]
                for name, value in targets_i.get_fields().items():
                    if name.startswith("gt_") and not proposals_i.has(name):
                        proposals_i.set(name, value[sampled_targets])
            else:
                # Every image gets gt_boxes so that Instances of the batch can be concatenated.
                zeros = proposals_i.proposal_boxes.tensor.new_zeros((len(sampled_idxs), 4))
                proposals_i.gt_boxes = Boxes(zeros)
            num_bg.append((gt_classes == self.num_classes).sum())
            num_fg.append(gt_classes.numel() - num_bg[-1])
            sampled.append(proposals_i)
        storage = event_storage_or_none()
        if storage is not None:
            storage.put_scalar("roi_head/num_fg_samples", torch.stack(num_fg).float().mean().item())
            storage.put_scalar("roi_head/num_bg_samples", torch.stack(num_bg).float().mean().item())
        return sampled

    def forward_with_given_boxes(
        self, features: dict[str, Tensor], instances: list[Instances]
    ) -> list[Instances]:
        """Runs the heads that follow the box branch on given detections; d2lite has no mask
        or keypoint head, so the detections come back unchanged."""
        assert not self.training
        assert instances[0].has("pred_boxes") and instances[0].has("pred_classes")
        return instances


@ROI_HEADS_REGISTRY.register()
class StandardROIHeads(ROIHeads):
    """The box branch of Faster R-CNN: ``box_pooler`` -> ``box_head`` -> ``box_predictor``."""

    @configurable
    def __init__(
        self,
        *,
        box_in_features: list[str],
        box_pooler: ROIPooler,
        box_head: nn.Module,
        box_predictor: nn.Module,
        train_on_pred_boxes: bool = False,
        **kwargs,
    ) -> None:
        """
        Args:
            box_in_features (list[str]): backbone features the boxes are pooled from.
            box_pooler (ROIPooler): pools S x S features per proposal.
            box_head (nn.Module): maps pooled features to a vector per ROI.
            box_predictor (nn.Module): maps that vector to scores and deltas; also computes
                the losses and the inference (``FastRCNNOutputLayers``).
            train_on_pred_boxes (bool): in training, replace the returned proposals' boxes by
                the predicted boxes of their GT class (for heads that run after the box head).
                Defaults to False.
            **kwargs: the arguments of :class:`ROIHeads`.
        """
        super().__init__(**kwargs)
        self.in_features = self.box_in_features = list(box_in_features)
        self.box_pooler = box_pooler
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.train_on_pred_boxes = train_on_pred_boxes

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        ret = super().from_config(cfg)
        ret["train_on_pred_boxes"] = cfg.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES
        ret.update(cls._init_box_head(cfg, input_shape))
        return ret

    @classmethod
    def _init_box_head(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        missing = [f for f in in_features if f not in input_shape]
        if missing:
            raise KeyError(
                f"MODEL.ROI_HEADS.IN_FEATURES names {missing}, which the backbone does not "
                f"output (it outputs {sorted(input_shape)})"
            )
        in_channels = {input_shape[f].channels for f in in_features}
        if len(in_channels) != 1:
            raise ValueError(f"ROI head inputs must have equal channels, got {sorted(in_channels)}")
        resolution = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
        box_pooler = _box_pooler(cfg, input_shape, in_features)
        box_head = build_box_head(
            cfg, ShapeSpec(channels=in_channels.pop(), height=resolution, width=resolution)
        )
        box_predictor = FastRCNNOutputLayers(cfg, box_head.output_shape)
        return {
            "box_in_features": in_features,
            "box_pooler": box_pooler,
            "box_head": box_head,
            "box_predictor": box_predictor,
        }

    def forward(
        self,
        images: ImageList,
        features: dict[str, Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ) -> tuple[list[Instances], dict[str, Tensor]]:
        """
        Args:
            images (ImageList): the batch (unused; kept for Detectron2's signature).
            features (dict[str, Tensor[N, C, Hi, Wi]]): backbone features.
            proposals (list[Instances]): per image, ``proposal_boxes`` and ``objectness_logits``.
            targets (list[Instances] | None): per image, ``gt_boxes`` and ``gt_classes``;
                needed in training.

        Returns:
            In training: (the sampled proposals, {"loss_cls", "loss_box_reg"}).
            In inference: (per image Instances with ``pred_boxes``, ``scores``,
            ``pred_classes``, {}).
        """
        del images
        if self.training:
            assert targets is not None, "StandardROIHeads requires targets in training!"
            proposals = self.label_and_sample_proposals(proposals, targets)
            return proposals, self._forward_box(features, proposals)
        return self._forward_box(features, proposals), {}

    def _forward_box(
        self, features: dict[str, Tensor], proposals: list[Instances]
    ) -> dict[str, Tensor] | list[Instances]:
        """Returns the box losses in training, the detections otherwise."""
        features = [features[f] for f in self.box_in_features]
        box_features = self.box_pooler(features, [x.proposal_boxes for x in proposals])
        box_features = self.box_head(box_features)
        predictions = self.box_predictor(box_features)
        del box_features
        if self.training:
            losses = self.box_predictor.losses(predictions, proposals)
            if self.train_on_pred_boxes:
                with torch.no_grad():
                    pred_boxes = self.box_predictor.predict_boxes_for_gt_classes(
                        predictions, proposals
                    )
                for proposals_i, pred_boxes_i in zip(proposals, pred_boxes):
                    proposals_i.proposal_boxes = Boxes(pred_boxes_i)
            return losses
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances


@ROI_HEADS_REGISTRY.register()
class Res5ROIHeads(ROIHeads):
    """The C4 box branch of Faster R-CNN: pool from one feature map (res4), run ResNet's res5
    stage on every ROI as the box head, average-pool, predict."""

    @configurable
    def __init__(
        self,
        *,
        in_features: list[str],
        pooler: ROIPooler,
        res5: nn.Module,
        box_predictor: nn.Module,
        **kwargs,
    ) -> None:
        """
        Args:
            in_features (list[str]): the one backbone feature the boxes are pooled from.
            pooler (ROIPooler): pools S x S features per proposal.
            res5 (nn.Module): the res5 stage (module ``res5``, as in Detectron2 checkpoints).
            box_predictor (nn.Module): maps the pooled res5 output to scores and deltas.
            **kwargs: the arguments of :class:`ROIHeads`.
        """
        super().__init__(**kwargs)
        self.in_features = list(in_features)
        self.pooler = pooler
        self.res5 = nn.Sequential(*res5) if isinstance(res5, (list, tuple)) else res5
        self.box_predictor = box_predictor

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        ret = super().from_config(cfg)
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        if len(in_features) != 1 or in_features[0] not in input_shape:
            raise ValueError(
                f"Res5ROIHeads pools from exactly one backbone feature; MODEL.ROI_HEADS.IN_FEATURES"
                f" is {list(in_features)} and the backbone outputs {sorted(input_shape)}"
            )
        ret["in_features"] = in_features
        ret["pooler"] = _box_pooler(cfg, input_shape, in_features)
        ret["res5"], out_channels = cls._build_res5_block(cfg)
        ret["box_predictor"] = FastRCNNOutputLayers(cfg, ShapeSpec(channels=out_channels))
        return ret

    @classmethod
    def _build_res5_block(cls, cfg: CfgNode) -> tuple[nn.Module, int]:
        """Returns res5 as the backbone would have built it (3 bottlenecks, stride 2)."""
        res = cfg.MODEL.RESNETS
        if res.DEPTH < 50:
            raise ValueError(f"Res5ROIHeads needs a bottleneck ResNet (50+), got R{res.DEPTH}")
        # res5 has 8x the channels of res2.
        factor = 2**3
        out_channels = res.RES2_OUT_CHANNELS * factor
        blocks = ResNet.make_stage(
            BottleneckBlock,
            3,
            stride_per_block=[2, 1, 1],
            in_channels=out_channels // 2,
            bottleneck_channels=res.NUM_GROUPS * res.WIDTH_PER_GROUP * factor,
            out_channels=out_channels,
            num_groups=res.NUM_GROUPS,
            norm=res.NORM,
            stride_in_1x1=res.STRIDE_IN_1X1,
        )
        return nn.Sequential(*blocks), out_channels

    def forward(
        self,
        images: ImageList,
        features: dict[str, Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ) -> tuple[list[Instances], dict[str, Tensor]]:
        """Same contract as :meth:`StandardROIHeads.forward`."""
        del images
        if self.training:
            assert targets is not None, "Res5ROIHeads requires targets in training!"
            proposals = self.label_and_sample_proposals(proposals, targets)
        box_features = self.pooler(
            [features[f] for f in self.in_features], [x.proposal_boxes for x in proposals]
        )
        box_features = self.res5(box_features)
        predictions = self.box_predictor(box_features.mean(dim=[2, 3]))
        if self.training:
            return proposals, self.box_predictor.losses(predictions, proposals)
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances, {}
