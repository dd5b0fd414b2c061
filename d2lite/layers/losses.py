"""IoU-based box regression losses: Distance-IoU and Complete-IoU (Zheng et al., 2020).

R: box pairs. Both losses take boxes in XYXY format, ``Tensor[R, 4]`` or a single ``Tensor[4]``,
and add penalties to ``1 - IoU`` that stay informative when the boxes do not overlap.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["ciou_loss", "diou_loss"]


def _iou_and_center_term(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """IoU of each pair, and squared centre distance over the squared enclosing-box diagonal."""
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    gx1, gy1, gx2, gy2 = boxes2.unbind(dim=-1)
    assert bool((x2 >= x1).all()) and bool((y2 >= y1).all()), "boxes1 must be x1 <= x2, y1 <= y2"

    inter_w = (torch.min(x2, gx2) - torch.max(x1, gx1)).clamp(min=0)
    inter_h = (torch.min(y2, gy2) - torch.max(y1, gy1)).clamp(min=0)
    inter = inter_w * inter_h
    # eps keeps two empty boxes from dividing by zero.
    union = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter + eps
    iou = inter / union

    diag_sq = (torch.max(x2, gx2) - torch.min(x1, gx1)) ** 2
    diag_sq = diag_sq + (torch.max(y2, gy2) - torch.min(y1, gy1)) ** 2 + eps
    center_sq = ((x1 + x2 - gx1 - gx2) / 2) ** 2 + ((y1 + y2 - gy1 - gy2) / 2) ** 2
    return iou, center_sq / diag_sq


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        # A mean over no pairs is NaN; 0 connected to the graph keeps training going.
        return loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    if reduction == "sum":
        return loss.sum()
    # Any other value (normally "none") keeps the per-pair losses, as in Detectron2.
    return loss


def diou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """Distance-IoU loss: ``1 - IoU + d^2 / c^2``.

    ``d`` is the distance between the box centres and ``c`` the diagonal of the smallest box
    enclosing both.

    Args:
        boxes1 (Tensor[R, 4] | Tensor[4]): predicted boxes, XYXY.
        boxes2 (Tensor[R, 4] | Tensor[4]): target boxes, XYXY.
        reduction (str): "none" (per pair), "mean" or "sum". Defaults to "none".
        eps (float): guards the divisions. Defaults to 1e-7.
    """
    iou, center_term = _iou_and_center_term(boxes1, boxes2, eps)
    return _reduce(1 - iou + center_term, reduction)


def ciou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """Complete-IoU loss: the Distance-IoU loss plus an aspect-ratio term ``alpha * v``.

    ``v = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2`` measures how the aspect ratios differ;
    ``alpha = v / (1 - IoU + v)`` is treated as a constant (no gradient), as in the paper.

    Args:
        boxes1 (Tensor[R, 4] | Tensor[4]): predicted boxes, XYXY.
        boxes2 (Tensor[R, 4] | Tensor[4]): target boxes, XYXY.
        reduction (str): "none" (per pair), "mean" or "sum". Defaults to "none".
        eps (float): guards the divisions. Defaults to 1e-7.
    """
    iou, center_term = _iou_and_center_term(boxes1, boxes2, eps)
    w1, h1 = boxes1[..., 2] - boxes1[..., 0], boxes1[..., 3] - boxes1[..., 1]
    w2, h2 = boxes2[..., 2] - boxes2[..., 0], boxes2[..., 3] - boxes2[..., 1]
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(1 - iou + center_term + alpha * v, reduction)
