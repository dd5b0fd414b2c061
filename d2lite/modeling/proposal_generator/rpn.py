"""Region Proposal Network: objectness and box deltas for every anchor, then top proposals.

N: images, L: feature levels, Hi, Wi: size of level i, A: anchors per location, B: box dim (4),
Ri = Hi * Wi * A: anchors of level i, R = sum(Ri): anchors of an image.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import CfgNode, configurable
from ...layers import ShapeSpec
from ...structures import Boxes, ImageList, Instances, pairwise_iou
from ...utils.events import event_storage_or_none
from ...utils.unsupported import unsupported_class
from ..anchor_generator import build_anchor_generator
from ..box_regression import Box2BoxTransform, _dense_box_regression_loss
from ..matcher import Matcher
from ..registry import PROPOSAL_GENERATOR_REGISTRY, RPN_HEAD_REGISTRY, build_registered
from ..sampling import get_sampling_generator, subsample_labels
from .proposal_utils import find_top_rpn_proposals

__all__ = ["RPN_HEAD_REGISTRY", "StandardRPNHead", "RPN", "RRPN", "build_rpn_head"]

def build_rpn_head(cfg: CfgNode, input_shape: list[ShapeSpec]) -> nn.Module:
    """Builds ``cfg.MODEL.RPN.HEAD_NAME``."""
    return build_registered(RPN_HEAD_REGISTRY, cfg.MODEL.RPN.HEAD_NAME, cfg, input_shape)


@RPN_HEAD_REGISTRY.register()
class StandardRPNHead(nn.Module):
    """Shared 3x3 conv(s) + ReLU, then two 1x1 convs: A objectness logits and A*B box deltas
    per location. The same weights run on every feature level."""

    @configurable
    def __init__(
        self, *, in_channels: int, num_anchors: int, box_dim: int = 4, conv_dims: list[int] = (-1,)
    ) -> None:
        """
        Args:
            in_channels (int): channels of every input feature map.
            num_anchors (int): A, anchors per location.
            box_dim (int): B, deltas per anchor. Defaults to 4.
            conv_dims (list[int]): output channels of the shared convs; -1 means
                ``in_channels``. One conv is the module ``conv``, several are ``conv.conv{k}``.
                Defaults to (-1,).
        """
        super().__init__()
        cur_channels = in_channels
        convs = []
        for conv_dim in conv_dims:
            out_channels = cur_channels if conv_dim == -1 else conv_dim
            if out_channels <= 0:
                raise ValueError(f"RPN conv_dims must be positive or -1, got {list(conv_dims)}")
            convs.append(nn.Conv2d(cur_channels, out_channels, kernel_size=3, stride=1, padding=1))
            cur_channels = out_channels
        named_convs = OrderedDict((f"conv{k}", conv) for k, conv in enumerate(convs))
        self.conv = convs[0] if len(convs) == 1 else nn.Sequential(named_convs)
        self.objectness_logits = nn.Conv2d(cur_channels, num_anchors, kernel_size=1, stride=1)
        self.anchor_deltas = nn.Conv2d(cur_channels, num_anchors * box_dim, kernel_size=1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.constant_(layer.bias, 0)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: list[ShapeSpec]) -> dict:
        in_channels = {s.channels for s in input_shape}
        if len(in_channels) != 1:
            raise ValueError(f"RPN inputs must have equal channels, got {sorted(in_channels)}")
        anchor_generator = build_anchor_generator(cfg, input_shape)
        num_anchors = set(anchor_generator.num_anchors)
        if len(num_anchors) != 1:
            raise ValueError(
                f"StandardRPNHead needs the same number of anchors on every level, got "
                f"{anchor_generator.num_anchors} (check MODEL.ANCHOR_GENERATOR.SIZES/ASPECT_RATIOS)"
            )
        return {
            "in_channels": in_channels.pop(),
            "num_anchors": num_anchors.pop(),
            "box_dim": anchor_generator.box_dim,
            "conv_dims": cfg.MODEL.RPN.CONV_DIMS,
        }

    def _shared_convs(self, x: Tensor) -> Tensor:
        convs = self.conv if isinstance(self.conv, nn.Sequential) else [self.conv]
        for conv in convs:
            x = F.relu(conv(x))
        return x

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """
        Args:
            features (list[Tensor[N, C, Hi, Wi]]): the input feature maps.

        Returns:
            pred_objectness_logits (list[Tensor[N, A, Hi, Wi]]): per level.
            pred_anchor_deltas (list[Tensor[N, A*B, Hi, Wi]]): per level.
        """
        pred_objectness_logits, pred_anchor_deltas = [], []
        for x in features:
            t = self._shared_convs(x)
            pred_objectness_logits.append(self.objectness_logits(t))
            pred_anchor_deltas.append(self.anchor_deltas(t))
        return pred_objectness_logits, pred_anchor_deltas


@PROPOSAL_GENERATOR_REGISTRY.register()
class RPN(nn.Module):
    """The Region Proposal Network of Faster R-CNN, over one or several feature maps."""

    @configurable
    def __init__(
        self,
        *,
        in_features: list[str],
        head: nn.Module,
        anchor_generator: nn.Module,
        anchor_matcher: Matcher,
        box2box_transform: Box2BoxTransform,
        batch_size_per_image: int,
        positive_fraction: float,
        pre_nms_topk: tuple[float, float],
        post_nms_topk: tuple[float, float],
        nms_thresh: float = 0.7,
        min_box_size: float = 0.0,
        anchor_boundary_thresh: float = -1.0,
        loss_weight: float | dict[str, float] = 1.0,
        box_reg_loss_type: str = "smooth_l1",
        smooth_l1_beta: float = 0.0,
    ) -> None:
        """
        Args:
            in_features (list[str]): names of the backbone features to use.
            head (nn.Module): maps the feature list to objectness logits and deltas.
            anchor_generator (nn.Module): maps the feature list to per-level anchors.
            anchor_matcher (Matcher): labels anchors by their IoU with the ground truth.
            box2box_transform (Box2BoxTransform): encodes anchors -> GT boxes.
            batch_size_per_image (int): anchors sampled per image for the losses.
            positive_fraction (float): largest share of foreground among them.
            pre_nms_topk (tuple[float, float]): (train, test) boxes kept per level before NMS.
            post_nms_topk (tuple[float, float]): (train, test) proposals kept per image.
            nms_thresh (float): IoU threshold of the proposal NMS. Defaults to 0.7.
            min_box_size (float): proposals with a side <= this are removed. Defaults to 0.0.
            anchor_boundary_thresh (float): anchors beyond the image border by more than this
                are ignored in training; negative keeps all. Defaults to -1.0.
            loss_weight (float | dict[str, float]): weight of both losses, or per loss key.
                Defaults to 1.0.
            box_reg_loss_type (str): "smooth_l1", "giou", "diou" or "ciou". Defaults to
                "smooth_l1".
            smooth_l1_beta (float): beta of the smooth-L1 loss; 0 means L1. Defaults to 0.0.
        """
        super().__init__()
        self.in_features = list(in_features)
        self.rpn_head = head
        self.anchor_generator = anchor_generator
        self.anchor_matcher = anchor_matcher
        self.box2box_transform = box2box_transform
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.pre_nms_topk = {True: pre_nms_topk[0], False: pre_nms_topk[1]}
        self.post_nms_topk = {True: post_nms_topk[0], False: post_nms_topk[1]}
        self.nms_thresh = nms_thresh
        self.min_box_size = float(min_box_size)
        self.anchor_boundary_thresh = anchor_boundary_thresh
        if isinstance(loss_weight, (int, float)):
            loss_weight = {"loss_rpn_cls": loss_weight, "loss_rpn_loc": loss_weight}
        self.loss_weight = loss_weight
        self.box_reg_loss_type = box_reg_loss_type
        self.smooth_l1_beta = smooth_l1_beta

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> dict:
        rpn = cfg.MODEL.RPN
        missing = [f for f in rpn.IN_FEATURES if f not in input_shape]
        if missing:
            raise KeyError(
                f"MODEL.RPN.IN_FEATURES names {missing}, which the backbone does not output "
                f"(it outputs {sorted(input_shape)})"
            )
        shapes = [input_shape[f] for f in rpn.IN_FEATURES]
        return {
            "in_features": rpn.IN_FEATURES,
            "head": build_rpn_head(cfg, shapes),
            "anchor_generator": build_anchor_generator(cfg, shapes),
            "anchor_matcher": Matcher(
                rpn.IOU_THRESHOLDS, rpn.IOU_LABELS, allow_low_quality_matches=True
            ),
            "box2box_transform": Box2BoxTransform(weights=rpn.BBOX_REG_WEIGHTS),
            "batch_size_per_image": rpn.BATCH_SIZE_PER_IMAGE,
            "positive_fraction": rpn.POSITIVE_FRACTION,
            "pre_nms_topk": (rpn.PRE_NMS_TOPK_TRAIN, rpn.PRE_NMS_TOPK_TEST),
            "post_nms_topk": (rpn.POST_NMS_TOPK_TRAIN, rpn.POST_NMS_TOPK_TEST),
            "nms_thresh": rpn.NMS_THRESH,
            "min_box_size": cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE,
            "anchor_boundary_thresh": rpn.BOUNDARY_THRESH,
            "loss_weight": {
                "loss_rpn_cls": rpn.LOSS_WEIGHT,
                "loss_rpn_loc": rpn.BBOX_REG_LOSS_WEIGHT * rpn.LOSS_WEIGHT,
            },
            "box_reg_loss_type": rpn.BBOX_REG_LOSS_TYPE,
            "smooth_l1_beta": rpn.SMOOTH_L1_BETA,
        }

    def _subsample_labels(self, label: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Keeps a balanced random sample of the labels in {0, 1}; the rest become -1.
        ``generator`` (on the labels' device) defaults to None: torch's global RNG."""
        pos_idx, neg_idx = subsample_labels(
            label, self.batch_size_per_image, self.positive_fraction, 0, generator=generator
        )
        label.fill_(-1)
        label.scatter_(0, pos_idx, 1)
        label.scatter_(0, neg_idx, 0)
        return label

    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: list[Boxes], gt_instances: list[Instances]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Matches the anchors to each image's ground truth and samples the ones for the loss
        (the i-th image from ``get_sampling_generator(i)``, see ``modeling.sampling``).

        Args:
            anchors (list[Boxes]): per level, Ri anchors (the same for every image).
            gt_instances (list[Instances]): per image, with ``gt_boxes``.

        Returns:
            gt_labels (list[Tensor[R]]): per image, 1 (sampled foreground), 0 (sampled
                background) or -1 (not sampled / ignored).
            matched_gt_boxes (list[Tensor[R, 4]]): per image, the GT box each anchor matched
                (zeros for an image without ground truth).
        """
        anchors = Boxes.cat(anchors)
        gt_labels, matched_gt_boxes = [], []
        for i, gt_per_image in enumerate(gt_instances):
            gt_boxes_i = gt_per_image.gt_boxes
            match_quality_matrix = pairwise_iou(gt_boxes_i, anchors)
            matched_idxs, gt_labels_i = self.anchor_matcher(match_quality_matrix)
            del match_quality_matrix
            if self.anchor_boundary_thresh >= 0:
                inside = anchors.inside_box(gt_per_image.image_size, self.anchor_boundary_thresh)
                gt_labels_i[~inside] = -1
            gt_labels.append(self._subsample_labels(gt_labels_i, get_sampling_generator(i)))
            if len(gt_boxes_i) == 0:
                matched_gt_boxes.append(torch.zeros_like(anchors.tensor))
            else:
                matched_gt_boxes.append(gt_boxes_i.tensor[matched_idxs])
        return gt_labels, matched_gt_boxes

    def losses(
        self,
        anchors: list[Boxes],
        pred_objectness_logits: list[Tensor],
        gt_labels: list[Tensor],
        pred_anchor_deltas: list[Tensor],
        gt_boxes: list[Tensor],
    ) -> dict[str, Tensor]:
        """
        Args:
            anchors (list[Boxes]): per level, Ri anchors.
            pred_objectness_logits (list[Tensor[N, Ri]]): per level.
            gt_labels (list[Tensor[R]]): per image, from :meth:`label_and_sample_anchors`.
            pred_anchor_deltas (list[Tensor[N, Ri, B]]): per level.
            gt_boxes (list[Tensor[R, 4]]): per image, the matched GT boxes.

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls`` and ``loss_rpn_loc``, both normalised by the
            number of sampled anchors the batch could have (batch_size_per_image * N).
        """
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)
        pos_mask = gt_labels == 1
        storage = event_storage_or_none()
        if storage is not None:
            storage.put_scalar("rpn/num_pos_anchors", pos_mask.sum().item() / num_images)
            storage.put_scalar("rpn/num_neg_anchors", (gt_labels == 0).sum().item() / num_images)
        localization_loss = _dense_box_regression_loss(
            anchors,
            self.box2box_transform,
            pred_anchor_deltas,
            gt_boxes,
            pos_mask,
            box_reg_loss_type=self.box_reg_loss_type,
            smooth_l1_beta=self.smooth_l1_beta,
        )
        valid_mask = gt_labels >= 0
        objectness_loss = F.binary_cross_entropy_with_logits(
            torch.cat(pred_objectness_logits, dim=1)[valid_mask],
            gt_labels[valid_mask].to(torch.float32),
            reduction="sum",
        )
        normalizer = self.batch_size_per_image * num_images
        losses = {
            "loss_rpn_cls": objectness_loss / normalizer,
            "loss_rpn_loc": localization_loss / normalizer,
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def forward(
        self,
        images: ImageList,
        features: dict[str, Tensor],
        gt_instances: list[Instances] | None = None,
    ) -> tuple[list[Instances], dict[str, Tensor]]:
        """
        Args:
            images (ImageList): the padded batch (its ``image_sizes`` clip the proposals).
            features (dict[str, Tensor[N, C, Hi, Wi]]): backbone features.
            gt_instances (list[Instances] | None): per image, with ``gt_boxes``; needed in
                training.

        Returns:
            proposals (list[Instances]): per image, ``proposal_boxes`` and ``objectness_logits``.
            losses (dict[str, Tensor]): the two RPN losses in training, else empty.
        """
        features = [features[f] for f in self.in_features]
        anchors = self.anchor_generator(features)
        pred_objectness_logits, pred_anchor_deltas = self.rpn_head(features)
        # (N, A, Hi, Wi) -> (N, Hi*Wi*A), the order of the anchors.
        pred_objectness_logits = [s.permute(0, 2, 3, 1).flatten(1) for s in pred_objectness_logits]
        box_dim = self.anchor_generator.box_dim
        # (N, A*B, Hi, Wi) -> (N, Hi*Wi*A, B).
        pred_anchor_deltas = [
            x.view(x.shape[0], -1, box_dim, x.shape[-2], x.shape[-1])
            .permute(0, 3, 4, 1, 2)
            .flatten(1, -2)
            for x in pred_anchor_deltas
        ]
        losses = {}
        if self.training:
            assert gt_instances is not None, "RPN requires gt_instances in training!"
            gt_labels, gt_boxes = self.label_and_sample_anchors(anchors, gt_instances)
            losses = self.losses(
                anchors, pred_objectness_logits, gt_labels, pred_anchor_deltas, gt_boxes
            )
        proposals = self.predict_proposals(
            anchors, pred_objectness_logits, pred_anchor_deltas, images.image_sizes
        )
        return proposals, losses

    @torch.no_grad()
    def predict_proposals(
        self,
        anchors: list[Boxes],
        pred_objectness_logits: list[Tensor],
        pred_anchor_deltas: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[Instances]:
        """Decodes the deltas and keeps the top proposals (no gradient flows into proposals,
        as in Faster R-CNN's approximate joint training).

        Returns:
            list[Instances]: per image, ``proposal_boxes`` and ``objectness_logits``.
        """
        pred_proposals = self._decode_proposals(anchors, pred_anchor_deltas)
        return find_top_rpn_proposals(
            pred_proposals,
            pred_objectness_logits,
            image_sizes,
            self.nms_thresh,
            self.pre_nms_topk[self.training],
            self.post_nms_topk[self.training],
            self.min_box_size,
            self.training,
        )

    def _decode_proposals(
        self, anchors: list[Boxes], pred_anchor_deltas: list[Tensor]
    ) -> list[Tensor]:
        """Returns per level Tensor[N, Ri, B]: the anchors moved by the predicted deltas."""
        num_images = pred_anchor_deltas[0].shape[0]
        proposals = []
        for anchors_i, deltas_i in zip(anchors, pred_anchor_deltas):
            box_dim = anchors_i.tensor.size(1)
            anchors_i = anchors_i.tensor.unsqueeze(0).expand(num_images, -1, -1)
            proposals_i = self.box2box_transform.apply_deltas(
                deltas_i.reshape(-1, box_dim), anchors_i.reshape(-1, box_dim)
            )
            proposals.append(proposals_i.view(num_images, -1, box_dim))
        return proposals


RRPN = unsupported_class("RRPN", "rotated proposals", __name__, bases=(nn.Module,))
PROPOSAL_GENERATOR_REGISTRY.register(RRPN)
