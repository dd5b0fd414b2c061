"""Turning dense RPN predictions into per-image proposals, and adding GT boxes to proposals.

N: images, L: feature levels, Hi, Wi: size of level i, A: anchors per location,
Ri = Hi * Wi * A: anchors of level i, K: proposals kept per image.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ...layers import batched_nms
from ...structures import Boxes, Instances

__all__ = [
    "add_ground_truth_to_proposals",
    "add_ground_truth_to_proposals_single_image",
    "find_top_rpn_proposals",
]


def _topk_per_level(
    proposals: list[Tensor], pred_objectness_logits: list[Tensor], pre_nms_topk: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Keeps the ``pre_nms_topk`` best anchors of each level, for the whole batch at once.

    Returns:
        boxes (Tensor[N, T, 4]), scores (Tensor[N, T]) and level ids (Tensor[T]) of the T kept
        anchors over all levels.
    """
    device = proposals[0].device
    batch_idx = torch.arange(proposals[0].shape[0], device=device)
    topk_boxes, topk_scores, level_ids = [], [], []
    for level_id, (proposals_i, logits_i) in enumerate(zip(proposals, pred_objectness_logits)):
        num_proposals_i = min(logits_i.shape[1], int(pre_nms_topk))
        # topk is sorted, so later truncation after NMS keeps the best boxes.
        scores_i, topk_idx = logits_i.topk(num_proposals_i, dim=1)
        topk_boxes.append(proposals_i[batch_idx[:, None], topk_idx])
        topk_scores.append(scores_i)
        level_ids.append(
            torch.full((num_proposals_i,), level_id, dtype=torch.int64, device=device)
        )
    return torch.cat(topk_boxes, dim=1), torch.cat(topk_scores, dim=1), torch.cat(level_ids)


def find_top_rpn_proposals(
    proposals: list[Tensor],
    pred_objectness_logits: list[Tensor],
    image_sizes: list[tuple[int, int]],
    nms_thresh: float,
    pre_nms_topk: int,
    post_nms_topk: int,
    min_box_size: float,
    training: bool,
) -> list[Instances]:
    """Selects the proposals of each image: per-level top-k by objectness, clip to the image,
    drop small or non-finite boxes, NMS within each level, keep the ``post_nms_topk`` best.

    Args:
        proposals (list[Tensor[N, Ri, 4]]): decoded boxes of every anchor, per level.
        pred_objectness_logits (list[Tensor[N, Ri]]): their objectness logits.
        image_sizes (list[tuple[int, int]]): (h, w) of each image before padding.
        nms_thresh (float): IoU threshold of the NMS.
        pre_nms_topk (int): boxes kept per level before NMS.
        post_nms_topk (int): boxes kept per image after NMS.
        min_box_size (float): boxes with a side <= this (input pixels) are dropped.
        training (bool): non-finite predictions raise in training and are dropped otherwise.

    Returns:
        list[Instances]: per image, K <= post_nms_topk proposals with fields ``proposal_boxes``
        (Boxes) and ``objectness_logits`` (Tensor[K]), sorted by decreasing objectness.
    """
    topk_proposals, topk_scores, level_ids = _topk_per_level(
        proposals, pred_objectness_logits, pre_nms_topk
    )
    results = []
    for n, image_size in enumerate(image_sizes):
        boxes, scores, lvl = Boxes(topk_proposals[n]), topk_scores[n], level_ids
        valid_mask = torch.isfinite(boxes.tensor).all(dim=1) & torch.isfinite(scores)
        if not valid_mask.all():
            if training:
                raise FloatingPointError(
                    "Predicted boxes or scores contain Inf/NaN. Training has diverged."
                )
            boxes, scores, lvl = boxes[valid_mask], scores[valid_mask], lvl[valid_mask]
        boxes.clip(image_size)
        keep = boxes.nonempty(threshold=min_box_size)
        boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
        keep = batched_nms(boxes.tensor, scores, lvl, nms_thresh)[: int(post_nms_topk)]
        res = Instances(image_size)
        res.proposal_boxes = boxes[keep]
        res.objectness_logits = scores[keep]
        results.append(res)
    return results


def add_ground_truth_to_proposals(
    gt: list[Instances] | list[Boxes], proposals: list[Instances]
) -> list[Instances]:
    """Appends each image's ground-truth boxes to its proposals, so that the box head sees
    perfect proposals from the first iteration on.

    Args:
        gt (list[Instances] | list[Boxes]): per image, Instances with ``gt_boxes`` (and any
            other fields) or Boxes.
        proposals (list[Instances]): per image, proposals with ``proposal_boxes``,
            ``objectness_logits`` and maybe other fields, which ``gt`` must have too.

    Returns:
        list[Instances]: the proposals followed by the ground truth, with the proposals' fields.
    """
    assert gt is not None, "add_ground_truth_to_proposals needs the ground truth"
    if len(gt) != len(proposals):
        raise ValueError(f"{len(gt)} ground-truth lists for {len(proposals)} images")
    return [add_ground_truth_to_proposals_single_image(g, p) for g, p in zip(gt, proposals)]


def add_ground_truth_to_proposals_single_image(
    gt: Instances | Boxes, proposals: Instances
) -> Instances:
    """:func:`add_ground_truth_to_proposals` for one image.

    Each GT box becomes a proposal with an objectness logit of about 23 (probability 1 - 1e-10).
    Every field of ``proposals`` besides the two it needs is taken from the GT field of that
    name (an ``AssertionError`` if ``gt`` lacks it); GT fields the proposals lack are dropped.
    """
    if isinstance(gt, Boxes):
        gt = Instances(proposals.image_size, gt_boxes=gt)
    device = proposals.objectness_logits.device
    gt_logit_value = math.log((1.0 - 1e-10) / (1 - (1.0 - 1e-10)))
    gt_proposal = Instances(proposals.image_size, **gt.get_fields())
    gt_proposal.proposal_boxes = gt.gt_boxes.to(device)
    gt_proposal.objectness_logits = torch.full((len(gt),), gt_logit_value, device=device)
    for name in proposals.get_fields():
        assert gt_proposal.has(name), f"Proposals have the field '{name}' but the ground truth not"
    # Instances.cat keeps the fields of its first element: the proposals'.
    return Instances.cat([proposals, gt_proposal])
