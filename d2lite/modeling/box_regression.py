"""Box encoding: the deltas a head regresses, and the box-regression losses built on them.

R: boxes (anchors or proposals), K: classes with their own regression, B: box dim (4).
Deltas follow the R-CNN parametrisation: (dx, dy) shift the centre in units of the source
box size, (dw, dh) scale its size in log space; ``weights`` multiply the four deltas.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import smooth_l1_loss
from torchvision.ops import generalized_box_iou_loss as giou_loss

from ..layers.losses import ciou_loss, diou_loss
from ..utils.unsupported import unsupported_class

__all__ = [
    "Box2BoxTransform",
    "Box2BoxTransformLinear",
    "Box2BoxTransformRotated",
    "_dense_box_regression_loss",
]

# Largest dw/dh applied: an anchor may grow at most 1000/16 times, which keeps exp() finite.
_DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


def _centers_and_sizes(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * widths, boxes[..., 1] + 0.5 * heights, widths, heights


class Box2BoxTransform:
    """Encodes a target box relative to a source box as (dx, dy, dw, dh) and decodes it back."""

    def __init__(
        self, weights: tuple[float, float, float, float], scale_clamp: float = _DEFAULT_SCALE_CLAMP
    ) -> None:
        """
        Args:
            weights (tuple[float, float, float, float]): multipliers of (dx, dy, dw, dh); larger
                weights make the regression targets larger.
            scale_clamp (float): dw and dh are clamped to this before ``exp``.
                Defaults to log(1000 / 16).
        """
        self.weights = tuple(weights)
        self.scale_clamp = scale_clamp

    def get_deltas(self, src_boxes: Tensor, target_boxes: Tensor) -> Tensor:
        """Returns the deltas that turn ``src_boxes`` into ``target_boxes``.

        Args:
            src_boxes (Tensor[R, 4]): source boxes in XYXY_ABS, with positive width and height.
            target_boxes (Tensor[R, 4]): target boxes in XYXY_ABS.

        Returns:
            Tensor[R, 4]: (dx, dy, dw, dh) per box.
        """
        assert isinstance(src_boxes, Tensor) and isinstance(target_boxes, Tensor), type(src_boxes)
        src_x, src_y, src_w, src_h = _centers_and_sizes(src_boxes)
        tgt_x, tgt_y, tgt_w, tgt_h = _centers_and_sizes(target_boxes)
        wx, wy, ww, wh = self.weights
        dx = wx * (tgt_x - src_x) / src_w
        dy = wy * (tgt_y - src_y) / src_h
        dw = ww * torch.log(tgt_w / src_w)
        dh = wh * torch.log(tgt_h / src_h)
        deltas = torch.stack((dx, dy, dw, dh), dim=1)
        assert (src_w > 0).all().item(), "Input boxes to Box2BoxTransform are not valid!"
        return deltas

    def apply_deltas(self, deltas: Tensor, boxes: Tensor) -> Tensor:
        """Applies ``deltas`` to ``boxes``.

        Args:
            deltas (Tensor[R, K*4]): K sets of deltas per box (K=1 for class-agnostic deltas).
            boxes (Tensor[R, 4]): boxes in XYXY_ABS.

        Returns:
            Tensor[R, K*4]: the decoded boxes in XYXY_ABS, same layout as ``deltas``.
        """
        deltas = deltas.float()
        boxes = boxes.to(deltas.dtype)
        ctr_x, ctr_y, widths, heights = _centers_and_sizes(boxes)
        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = torch.clamp(deltas[:, 2::4] / ww, max=self.scale_clamp)
        dh = torch.clamp(deltas[:, 3::4] / wh, max=self.scale_clamp)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = torch.exp(dw) * widths[:, None]
        pred_h = torch.exp(dh) * heights[:, None]
        x1, y1 = pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h
        x2, y2 = pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h
        return torch.stack((x1, y1, x2, y2), dim=-1).reshape(deltas.shape)


class Box2BoxTransformLinear:
    """The FCOS-style transform: distances from the source box centre to the four target sides,
    divided by the source box size.

    No d2lite model uses it (FCOS is left out); it stays, at Detectron2's path only, because
    Detectron2's own box-coding test imports it and passes against d2lite.
    """

    def __init__(self, normalize_by_size: bool = True) -> None:
        """
        Args:
            normalize_by_size (bool): divide the distances by the source box size.
                Defaults to True.
        """
        self.normalize_by_size = normalize_by_size

    def get_deltas(self, src_boxes: Tensor, target_boxes: Tensor) -> Tensor:
        """Returns Tensor[R, 4]: (left, top, right, bottom) distances from each source centre."""
        src_x, src_y, src_w, src_h = _centers_and_sizes(src_boxes)
        centers = torch.stack((src_x, src_y), dim=1)
        deltas = torch.cat((centers - target_boxes[:, :2], target_boxes[:, 2:] - centers), dim=1)
        if self.normalize_by_size:
            deltas = deltas / torch.stack((src_w, src_h, src_w, src_h), dim=1)
        return deltas

    def apply_deltas(self, deltas: Tensor, boxes: Tensor) -> Tensor:
        """Decodes Tensor[R, K*4] distances relative to ``boxes`` (Tensor[R, 4]) into boxes."""
        deltas = torch.relu(deltas.float())
        boxes = boxes.to(deltas.dtype)
        ctr_x, ctr_y, widths, heights = _centers_and_sizes(boxes)
        if self.normalize_by_size:
            scale = torch.stack((widths, heights, widths, heights), dim=1).repeat(
                1, deltas.shape[1] // 4
            )
            deltas = deltas * scale
        x1 = ctr_x[:, None] - deltas[:, 0::4]
        y1 = ctr_y[:, None] - deltas[:, 1::4]
        x2 = ctr_x[:, None] + deltas[:, 2::4]
        y2 = ctr_y[:, None] + deltas[:, 3::4]
        return torch.stack((x1, y1, x2, y2), dim=-1).reshape(deltas.shape)


Box2BoxTransformRotated = unsupported_class(
    "Box2BoxTransformRotated", "rotated boxes", __name__
)


# Losses on the decoded boxes (the others compare deltas), by BBOX_REG_LOSS_TYPE.
_IOU_LOSSES = {"giou": giou_loss, "diou": diou_loss, "ciou": ciou_loss}


def _cat_boxes(boxes: list) -> Tensor:
    """Concatenates a list of ``Boxes`` or of Tensor[Ri, 4] into one Tensor[R, 4]."""
    return torch.cat([b.tensor if hasattr(b, "tensor") else b for b in boxes], dim=0)


def _dense_box_regression_loss(
    anchors: list,
    box2box_transform: Box2BoxTransform,
    pred_anchor_deltas: list[Tensor],
    gt_boxes: list[Tensor],
    fg_mask: Tensor,
    box_reg_loss_type: str = "smooth_l1",
    smooth_l1_beta: float = 0.0,
) -> Tensor:
    """Box-regression loss summed over the foreground anchors of a batch (not normalised).

    Args:
        anchors (list[Boxes | Tensor[Ri, 4]]): anchors of each feature level; R = sum(Ri).
        box2box_transform (Box2BoxTransform): the encoding of the deltas.
        pred_anchor_deltas (list[Tensor[N, Ri, 4]]): predicted deltas of each level.
        gt_boxes (list[Tensor[R, 4]]): the matched ground-truth box of every anchor, per image.
        fg_mask (Tensor[N, R] | Ellipsis): which anchors are foreground (bool).
        box_reg_loss_type (str): "smooth_l1", "giou", "diou" or "ciou". Defaults to "smooth_l1".
        smooth_l1_beta (float): beta of the smooth-L1 loss; 0 means L1. Defaults to 0.0.

    Returns:
        Tensor[]: the summed loss.
    """
    anchors = _cat_boxes(anchors)
    pred_deltas = torch.cat(pred_anchor_deltas, dim=1)
    if box_reg_loss_type == "smooth_l1":
        gt_deltas = torch.stack([box2box_transform.get_deltas(anchors, k) for k in gt_boxes])
        return smooth_l1_loss(
            pred_deltas[fg_mask], gt_deltas[fg_mask], beta=smooth_l1_beta, reduction="sum"
        )
    if box_reg_loss_type in _IOU_LOSSES:
        pred_boxes = torch.stack([box2box_transform.apply_deltas(k, anchors) for k in pred_deltas])
        loss = _IOU_LOSSES[box_reg_loss_type]
        return loss(pred_boxes[fg_mask], torch.stack(gt_boxes)[fg_mask], reduction="sum")
    raise ValueError(
        f"Invalid box regression loss type '{box_reg_loss_type}'; expected 'smooth_l1' or one of "
        f"{sorted(_IOU_LOSSES)}."
    )
