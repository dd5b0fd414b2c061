"""The Fast R-CNN box predictor: class scores and per-class box deltas for each ROI, its losses
and the inference that turns them into detections.

N: images, R: ROIs in the batch (Ri in image i), K: foreground classes (K+1 with background,
which is the last class), B: box dim (4), D: input feature size.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import CfgNode, configurable
from ...data import detection_utils
from ...layers import ShapeSpec, batched_nms, cross_entropy
from ...structures import Boxes, Instances
from ...utils.events import event_storage_or_none
from ..box_regression import Box2BoxTransform, _dense_box_regression_loss

__all__ = ["FastRCNNOutputLayers", "fast_rcnn_inference", "fast_rcnn_inference_single_image"]


def fast_rcnn_inference(
    boxes: list[Tensor],
    scores: list[Tensor],
    image_shapes: list[tuple[int, int]],
    score_thresh: float,
    nms_thresh: float,
    topk_per_image: int,
) -> tuple[list[Instances], list[Tensor]]:
    """Per image: keep (box, class) pairs scoring above ``score_thresh``, run NMS per class and
    keep the ``topk_per_image`` best.

    Args:
        boxes (list[Tensor[Ri, K*4]] | list[Tensor[Ri, 4]]): per image, predicted boxes per
            class (or class-agnostic).
        scores (list[Tensor[Ri, K+1]]): per image, class probabilities (background last).
        image_shapes (list[tuple[int, int]]): (h, w) of each image, to clip the boxes.
        score_thresh (float): pairs scoring <= this are dropped.
        nms_thresh (float): IoU threshold of the per-class NMS.
        topk_per_image (int): detections kept per image; negative keeps all.

    Returns:
        instances (list[Instances]): per image, ``pred_boxes``, ``scores``, ``pred_classes``,
            sorted by decreasing score.
        kept_indices (list[Tensor]): per image, the ROI index of each detection.
    """
    result_per_image = [
        fast_rcnn_inference_single_image(
            boxes_i, scores_i, shape, score_thresh, nms_thresh, topk_per_image
        )
        for boxes_i, scores_i, shape in zip(boxes, scores, image_shapes)
    ]
    return [x[0] for x in result_per_image], [x[1] for x in result_per_image]


def fast_rcnn_inference_single_image(
    boxes: Tensor,
    scores: Tensor,
    image_shape: tuple[int, int],
    score_thresh: float,
    nms_thresh: float,
    topk_per_image: int,
) -> tuple[Instances, Tensor]:
    """:func:`fast_rcnn_inference` for one image."""
    valid_mask = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    if not valid_mask.all():
        boxes, scores = boxes[valid_mask], scores[valid_mask]
    roi_index = torch.nonzero(valid_mask, as_tuple=True)[0]
    scores = scores[:, :-1]
    num_bbox_reg_classes = boxes.shape[1] // 4
    boxes = Boxes(boxes.reshape(-1, 4))
    boxes.clip(image_shape)
    boxes = boxes.tensor.view(-1, num_bbox_reg_classes, 4)
    filter_mask = scores > score_thresh
    # (roi, class) pairs that passed the threshold.
    filter_inds = filter_mask.nonzero()
    if num_bbox_reg_classes == 1:
        boxes = boxes[filter_inds[:, 0], 0]
    else:
        boxes = boxes[filter_mask]
    scores = scores[filter_mask]
    keep = batched_nms(boxes, scores, filter_inds[:, 1], nms_thresh)
    if topk_per_image >= 0:
        keep = keep[:topk_per_image]
    boxes, scores, filter_inds = boxes[keep], scores[keep], filter_inds[keep]
    result = Instances(image_shape)
    result.pred_boxes = Boxes(boxes)
    result.scores = scores
    result.pred_classes = filter_inds[:, 1]
    return result, roi_index[filter_inds[:, 0]]


def _log_classification_stats(pred_logits: Tensor, gt_classes: Tensor) -> None:
    """Logs ``fast_rcnn/cls_accuracy``, ``fg_cls_accuracy`` and ``false_negative``."""
    storage = event_storage_or_none()
    num_instances = gt_classes.numel()
    if storage is None or num_instances == 0:
        return
    pred_classes = pred_logits.argmax(dim=1)
    bg_class = pred_logits.shape[1] - 1
    fg_inds = (gt_classes >= 0) & (gt_classes < bg_class)
    num_fg = int(fg_inds.sum().item())
    fg_gt_classes, fg_pred_classes = gt_classes[fg_inds], pred_classes[fg_inds]
    num_accurate = (pred_classes == gt_classes).sum().item()
    storage.put_scalar("fast_rcnn/cls_accuracy", num_accurate / num_instances)
    if num_fg > 0:
        fg_accurate = (fg_pred_classes == fg_gt_classes).sum().item()
        false_negative = (fg_pred_classes == bg_class).sum().item()
        storage.put_scalar("fast_rcnn/fg_cls_accuracy", fg_accurate / num_fg)
        storage.put_scalar("fast_rcnn/false_negative", false_negative / num_fg)


class FastRCNNOutputLayers(nn.Module):
    """Two linear layers: ``cls_score`` (K+1 logits) and ``bbox_pred`` (K*4 or 4 deltas)."""

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec | int,
        *,
        box2box_transform: Box2BoxTransform,
        num_classes: int,
        test_score_thresh: float = 0.0,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        cls_agnostic_bbox_reg: bool = False,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: float | dict[str, float] = 1.0,
        use_fed_loss: bool = False,
        use_sigmoid_ce: bool = False,
        get_fed_loss_cls_weights: Callable[[], Tensor] | None = None,
        fed_loss_num_classes: int = 50,
    ) -> None:
        """
        Args:
            input_shape (ShapeSpec | int): shape of the box-head output (D = C*H*W).
            box2box_transform (Box2BoxTransform): encodes proposals -> GT boxes.
            num_classes (int): K, foreground classes.
            test_score_thresh (float): detections scoring <= this are dropped. Defaults to 0.0.
            test_nms_thresh (float): IoU threshold of the per-class NMS. Defaults to 0.5.
            test_topk_per_image (int): detections kept per image. Defaults to 100.
            cls_agnostic_bbox_reg (bool): one box per ROI instead of one per class.
                Defaults to False.
            smooth_l1_beta (float): beta of the smooth-L1 loss; 0 means L1. Defaults to 0.0.
            box_reg_loss_type (str): "smooth_l1", "giou", "diou" or "ciou". Defaults to
                "smooth_l1".
            loss_weight (float | dict[str, float]): weight of both losses or per loss key
                ("loss_cls", "loss_box_reg"). Defaults to 1.0.
            use_fed_loss (bool): count only the classes of the batch plus sampled negatives in
                the classification loss (needs ``use_sigmoid_ce``). Defaults to False.
            use_sigmoid_ce (bool): classify with one sigmoid per class instead of a softmax.
                Defaults to False.
            get_fed_loss_cls_weights (Callable[[], Tensor[K]] | None): returns the sampling
                weight of each class for the federated loss. Defaults to None.
            fed_loss_num_classes (int): classes counted by the federated loss. Defaults to 50.
        """
        super().__init__()
        if isinstance(input_shape, int):
            input_shape = ShapeSpec(channels=input_shape)
        input_size = input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)
        self.num_classes = num_classes
        self.cls_score = nn.Linear(input_size, num_classes + 1)
        num_bbox_reg_classes = 1 if cls_agnostic_bbox_reg else num_classes
        box_dim = len(box2box_transform.weights)
        self.bbox_pred = nn.Linear(input_size, num_bbox_reg_classes * box_dim)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.constant_(layer.bias, 0)
        self.box2box_transform = box2box_transform
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk_per_image = test_topk_per_image
        self.box_reg_loss_type = box_reg_loss_type
        if isinstance(loss_weight, (int, float)):
            loss_weight = {"loss_cls": loss_weight, "loss_box_reg": loss_weight}
        self.loss_weight = loss_weight
        self.use_fed_loss = use_fed_loss
        self.use_sigmoid_ce = use_sigmoid_ce
        self.fed_loss_num_classes = fed_loss_num_classes
        if use_fed_loss:
            if not use_sigmoid_ce:
                raise ValueError("use_fed_loss needs use_sigmoid_ce (MODEL.ROI_BOX_HEAD)")
            weights = get_fed_loss_cls_weights()
            if len(weights) != num_classes:
                raise ValueError(f"{len(weights)} federated-loss weights for {num_classes} classes")
            self.register_buffer("fed_loss_cls_weights", weights)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: ShapeSpec) -> dict:
        head = cfg.MODEL.ROI_BOX_HEAD
        return {
            "input_shape": input_shape,
            "box2box_transform": Box2BoxTransform(weights=head.BBOX_REG_WEIGHTS),
            "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "cls_agnostic_bbox_reg": head.CLS_AGNOSTIC_BBOX_REG,
            "smooth_l1_beta": head.SMOOTH_L1_BETA,
            "test_score_thresh": cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
            "test_nms_thresh": cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            "test_topk_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "box_reg_loss_type": head.BBOX_REG_LOSS_TYPE,
            "loss_weight": {"loss_box_reg": head.BBOX_REG_LOSS_WEIGHT},
            "use_fed_loss": head.USE_FED_LOSS,
            "use_sigmoid_ce": head.USE_SIGMOID_CE,
            # Called only with the federated loss on: it reads the datasets' class counts.
            "get_fed_loss_cls_weights": lambda: detection_utils.get_fed_loss_cls_weights(
                cfg.DATASETS.TRAIN, head.FED_LOSS_FREQ_WEIGHT_POWER
            ),
            "fed_loss_num_classes": head.FED_LOSS_NUM_CLASSES,
        }

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """
        Args:
            x (Tensor[R, D] | Tensor[R, C, H, W]): box-head features.

        Returns:
            scores (Tensor[R, K+1]): class logits.
            proposal_deltas (Tensor[R, K*4] | Tensor[R, 4]): box deltas.
        """
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)

    def losses(
        self, predictions: tuple[Tensor, Tensor], proposals: list[Instances]
    ) -> dict[str, Tensor]:
        """
        Args:
            predictions (tuple[Tensor, Tensor]): the output of :meth:`forward`.
            proposals (list[Instances]): the sampled proposals, with ``proposal_boxes``,
                ``gt_classes`` and (for images with ground truth) ``gt_boxes``.

        Returns:
            dict[str, Tensor]: ``loss_cls`` (mean cross entropy) and ``loss_box_reg``.
        """
        scores, proposal_deltas = predictions
        if len(proposals):
            gt_classes = torch.cat([p.gt_classes for p in proposals], dim=0)
            proposal_boxes = torch.cat([p.proposal_boxes.tensor for p in proposals], dim=0)
            # Background proposals have no GT box; their own box is a harmless placeholder.
            gt_boxes = torch.cat(
                [(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals]
            )
        else:
            gt_classes = torch.empty(0, dtype=torch.int64, device=scores.device)
            proposal_boxes = gt_boxes = torch.empty((0, 4), device=proposal_deltas.device)
        assert not proposal_boxes.requires_grad, "Proposals should not require gradients!"
        _log_classification_stats(scores, gt_classes)
        if self.use_sigmoid_ce:
            loss_cls = self.sigmoid_cross_entropy_loss(scores, gt_classes)
        else:
            loss_cls = cross_entropy(scores, gt_classes, reduction="mean")
        losses = {
            "loss_cls": loss_cls,
            "loss_box_reg": self.box_reg_loss(
                proposal_boxes, gt_boxes, proposal_deltas, gt_classes
            ),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def get_fed_loss_classes(
        self, gt_classes: Tensor, num_fed_loss_classes: int, num_classes: int, weight: Tensor
    ) -> Tensor:
        """The classes the federated loss (Zhou et al., 2021) counts: those in ``gt_classes``,
        topped up to ``num_fed_loss_classes`` with absent classes drawn without replacement in
        proportion to ``weight (Tensor[K])``. A class missing from an image's sparse (LVIS)
        annotation is no evidence that it is absent, so not every class is penalised.
        """
        present = torch.unique(gt_classes)
        if len(present) >= num_fed_loss_classes:
            return present
        prob = present.new_zeros(num_classes + 1).float()
        # Background (the last entry) is never drawn, nor a class already present.
        prob[:num_classes] = weight.float()
        prob[present] = 0
        drawn = torch.multinomial(prob, num_fed_loss_classes - len(present), replacement=False)
        return torch.cat([present, drawn])

    def sigmoid_cross_entropy_loss(self, pred_class_logits: Tensor, gt_classes: Tensor) -> Tensor:
        """Binary cross entropy of every foreground class of every ROI, summed over the classes
        (the federated ones only with ``use_fed_loss``) and averaged over the R ROIs.

        Args:
            pred_class_logits (Tensor[R, K+1]): class logits; the background logit is unused.
            gt_classes (Tensor[R]): the class of each ROI (K is background: all targets 0).
        """
        if pred_class_logits.numel() == 0:
            return pred_class_logits.new_zeros([1])[0]
        num_rois, num_classes = pred_class_logits.shape[0], pred_class_logits.shape[1] - 1
        target = F.one_hot(gt_classes, num_classes + 1)[:, :num_classes].to(pred_class_logits)
        cls_loss = F.binary_cross_entropy_with_logits(
            pred_class_logits[:, :-1], target, reduction="none"
        )
        if self.use_fed_loss:
            classes = self.get_fed_loss_classes(
                gt_classes, self.fed_loss_num_classes, num_classes, self.fed_loss_cls_weights
            )
            counted = gt_classes.new_zeros(num_classes + 1)
            counted[classes] = 1
            cls_loss = cls_loss * counted[:num_classes].float()[None]
        return cls_loss.sum() / num_rois

    def box_reg_loss(
        self, proposal_boxes: Tensor, gt_boxes: Tensor, pred_deltas: Tensor, gt_classes: Tensor
    ) -> Tensor:
        """Box-regression loss of the foreground ROIs, divided by the number of sampled ROIs
        (so that the loss does not grow with the share of foreground).

        Args:
            proposal_boxes (Tensor[R, 4]): the sampled proposals.
            gt_boxes (Tensor[R, 4]): their matched GT boxes.
            pred_deltas (Tensor[R, K*4] | Tensor[R, 4]): predicted deltas.
            gt_classes (Tensor[R]): GT class of each ROI (K is background).
        """
        box_dim = proposal_boxes.shape[1]
        fg_mask = (gt_classes >= 0) & (gt_classes < self.num_classes)
        fg_inds = torch.nonzero(fg_mask, as_tuple=True)[0]
        if pred_deltas.shape[1] == box_dim:
            fg_pred_deltas = pred_deltas[fg_inds]
        else:
            fg_pred_deltas = pred_deltas.view(-1, self.num_classes, box_dim)[
                fg_inds, gt_classes[fg_inds]
            ]
        loss_box_reg = _dense_box_regression_loss(
            [proposal_boxes[fg_inds]],
            self.box2box_transform,
            [fg_pred_deltas.unsqueeze(0)],
            [gt_boxes[fg_inds]],
            ...,
            self.box_reg_loss_type,
            self.smooth_l1_beta,
        )
        return loss_box_reg / max(gt_classes.numel(), 1.0)

    def inference(
        self, predictions: tuple[Tensor, Tensor], proposals: list[Instances]
    ) -> tuple[list[Instances], list[Tensor]]:
        """Returns the detections of each image; see :func:`fast_rcnn_inference`."""
        boxes = self.predict_boxes(predictions, proposals)
        scores = self.predict_probs(predictions, proposals)
        image_shapes = [x.image_size for x in proposals]
        return fast_rcnn_inference(
            boxes,
            scores,
            image_shapes,
            self.test_score_thresh,
            self.test_nms_thresh,
            self.test_topk_per_image,
        )

    def predict_boxes(
        self, predictions: tuple[Tensor, Tensor], proposals: list[Instances]
    ) -> list[Tensor]:
        """Returns per image Tensor[Ri, K*4] (or Tensor[Ri, 4]): the decoded boxes."""
        if not len(proposals):
            return []
        _, proposal_deltas = predictions
        num_prop_per_image = [len(p) for p in proposals]
        proposal_boxes = torch.cat([p.proposal_boxes.tensor for p in proposals], dim=0)
        predict_boxes = self.box2box_transform.apply_deltas(proposal_deltas, proposal_boxes)
        return predict_boxes.split(num_prop_per_image)

    def predict_boxes_for_gt_classes(
        self, predictions: tuple[Tensor, Tensor], proposals: list[Instances]
    ) -> list[Tensor]:
        """Returns per image Tensor[Ri, 4]: the box decoded for each proposal's ``gt_classes``."""
        if not len(proposals):
            return []
        scores, proposal_deltas = predictions
        proposal_boxes = torch.cat([p.proposal_boxes.tensor for p in proposals], dim=0)
        num_prop = proposal_boxes.shape[0]
        boxes = self.box2box_transform.apply_deltas(proposal_deltas, proposal_boxes)
        num_reg_classes = boxes.shape[1] // 4
        if num_reg_classes > 1:
            gt_classes = torch.cat([p.gt_classes for p in proposals], dim=0)
            # Background proposals (class K) borrow the deltas of class K-1, as Detectron2 does.
            gt_classes = gt_classes.clamp(0, num_reg_classes - 1)
            rows = torch.arange(num_prop, device=boxes.device)
            boxes = boxes.view(num_prop, num_reg_classes, 4)[rows, gt_classes]
        return boxes.split([len(p) for p in proposals])

    def predict_probs(
        self, predictions: tuple[Tensor, Tensor], proposals: list[Instances]
    ) -> list[Tensor]:
        """Returns per image Tensor[Ri, K+1]: softmax class probabilities."""
        scores, _ = predictions
        num_inst_per_image = [len(p) for p in proposals]
        # float(): under autocast, half-precision scores would blur the score threshold and ranking.
        scores = scores.float()
        probs = scores.sigmoid() if self.use_sigmoid_ce else F.softmax(scores, dim=-1)
        return probs.split(num_inst_per_image, dim=0)
