"""Non-maximum suppression, from ``torchvision.ops``; the rotated-box variants are not in d2lite."""
from __future__ import annotations

import torchvision
from torch import Tensor

from ..utils.unsupported import unsupported_function

__all__ = ["batched_nms", "batched_nms_rotated", "nms", "nms_rotated"]

nms_rotated = unsupported_function("nms_rotated", "rotated boxes", __name__)
batched_nms_rotated = unsupported_function("batched_nms_rotated", "rotated boxes", __name__)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (int64, by decreasing score) of the boxes kept by NMS.

    Args:
        boxes (Tensor[R, 4]): XYXY_ABS boxes.
        scores (Tensor[R]): their scores.
        iou_threshold (float): boxes overlapping a kept box by more than this are dropped.
    """
    assert boxes.shape[-1] == 4, f"boxes must be (R, 4), got {tuple(boxes.shape)}"
    return torchvision.ops.nms(boxes.float(), scores.float(), iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS run independently per category ``idxs``; returns kept indices by decreasing score.

    Args:
        boxes (Tensor[R, 4]): XYXY_ABS boxes.
        scores (Tensor[R]): their scores.
        idxs (Tensor[R]): int64 category (or image/level) of each box.
        iou_threshold (float): boxes overlapping a kept box of the same category by more than
            this are dropped.
    """
    assert boxes.shape[-1] == 4, f"boxes must be (R, 4), got {tuple(boxes.shape)}"
    # float() because fp16 boxes lose the precision NMS needs for IoU near the threshold.
    return torchvision.ops.batched_nms(boxes.float(), scores.float(), idxs, iou_threshold)
