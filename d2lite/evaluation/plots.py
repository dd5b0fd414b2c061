"""Detection diagnostics: a class confusion matrix and per-class precision-recall curves.

Shapes: K classes, G ground-truth boxes and D detections of one image, R recall thresholds.
The confusion matrix is ``[K + 1, K + 1]``: rows are ground-truth classes plus a last
"background" row (detections that match no ground truth: false positives), columns are predicted
classes plus a last "background" column (ground truth that no detection matched: misses).
"""
from __future__ import annotations

import csv

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.ops import box_iou

from d2lite.utils.file_io import atomic_output

__all__ = [
    "confusion_matrix",
    "save_confusion_matrix_csv",
    "plot_confusion_matrix",
    "plot_pr_curves",
]


def _match_image(
    gt_boxes: Tensor, gt_classes: Tensor, dt_boxes: Tensor, dt_classes: Tensor, iou_threshold: float
) -> tuple[Tensor, Tensor]:
    """Greedily matches score-sorted detections to ground truth, ignoring classes.

    Each detection, in order, takes the still-unmatched ground-truth box it overlaps most, if
    that IoU is at least ``iou_threshold``. Matching ignores classes so that a box found with
    the wrong label shows up as a confusion instead of a false positive plus a miss.

    Returns:
        tuple[Tensor[D], Tensor[G]]: the matched GT index of each detection (-1: none), and
        whether each GT box was matched.
    """
    num_dt, num_gt = len(dt_boxes), len(gt_boxes)
    dt_match = torch.full((num_dt,), -1, dtype=torch.long)
    gt_taken = torch.zeros(num_gt, dtype=torch.bool)
    if num_dt == 0 or num_gt == 0:
        return dt_match, gt_taken
    ious = box_iou(dt_boxes, gt_boxes)
    for d in range(num_dt):
        candidates = ious[d].masked_fill(gt_taken, -1.0)
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            dt_match[d] = best
            gt_taken[best] = True
    return dt_match, gt_taken


def confusion_matrix(
    gt_per_image: list[tuple[Tensor, Tensor]],
    dt_per_image: list[tuple[Tensor, Tensor, Tensor]],
    num_classes: int,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> np.ndarray:
    """Counts how ground-truth classes are predicted, over a set of images.

    Args:
        gt_per_image (list[tuple[Tensor[G, 4], Tensor[G]]]): per image, non-crowd GT boxes in
            XYXY_ABS and their class indices in [0, K).
        dt_per_image (list[tuple[Tensor[D, 4], Tensor[D], Tensor[D]]]): per image (same order),
            detection boxes in XYXY_ABS, scores and class indices in [0, K).
        num_classes (int): K.
        iou_threshold (float): minimum IoU of a match. Defaults to 0.5.
        score_threshold (float): detections scoring below it are ignored. Defaults to 0.5.

    Returns:
        np.ndarray[K + 1, K + 1]: int64 counts; see the module docstring for the layout.
    """
    if len(gt_per_image) != len(dt_per_image):
        raise ValueError(
            f"confusion_matrix got {len(gt_per_image)} GT images but {len(dt_per_image)} "
            f"detection images"
        )
    background = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for (gt_boxes, gt_classes), dt in zip(gt_per_image, dt_per_image):
        dt_boxes, dt_scores, dt_classes = dt
        keep = dt_scores >= score_threshold
        order = torch.argsort(dt_scores[keep], descending=True)
        dt_boxes, dt_classes = dt_boxes[keep][order], dt_classes[keep][order]
        dt_match, gt_taken = _match_image(
            gt_boxes.float(), gt_classes, dt_boxes.float(), dt_classes, iou_threshold
        )
        matched = dt_match >= 0
        if len(gt_classes):
            rows = torch.where(matched, gt_classes[dt_match.clamp(min=0)], background)
        else:
            rows = torch.full_like(dt_classes, background)
        np.add.at(matrix, (rows.numpy(), dt_classes.numpy()), 1)
        np.add.at(matrix, (gt_classes[~gt_taken].numpy(), background), 1)
    return matrix


def save_confusion_matrix_csv(matrix: np.ndarray, class_names: list[str], path: str) -> None:
    """Writes the matrix with a header row and a label column ("gt \\ pred")."""
    labels = list(class_names) + ["background"]
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["gt \\ pred"] + labels)
        for label, row in zip(labels, matrix):
            writer.writerow([label] + [int(v) for v in row])


def _save(fig: Figure, path: str) -> None:
    # Drawing on an explicit Agg canvas keeps pyplot's global state and backend untouched.
    FigureCanvasAgg(fig)
    # The temporary file keeps the extension, from which savefig picks the format.
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: str) -> None:
    """Saves the confusion matrix as an annotated heat map PNG."""
    labels = list(class_names) + ["background"]
    size = max(4.0, 0.6 * len(labels) + 2.0)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(labels)), labels=labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    threshold = matrix.max() / 2 if matrix.size else 0
    if len(labels) <= 30:
        for (i, j), value in np.ndenumerate(matrix):
            color = "white" if value > threshold else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_pr_curves(
    precision: np.ndarray, recall_thresholds: np.ndarray, class_names: list[str], path: str
) -> None:
    """Saves one precision-recall curve per class (at IoU 0.5) in a single PNG.

    Args:
        precision (np.ndarray[R, K]): COCOeval precision at IoU 0.5, area "all", the largest
            maxDets; a class whose entries are all -1 has no ground truth and is left out.
        recall_thresholds (np.ndarray[R]): COCOeval's ``params.recThrs``.
        class_names (list[str]): K names.
    """
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot(1, 1, 1)
    for k, name in enumerate(class_names):
        curve = precision[:, k]
        if not (curve > -1).any():
            continue
        label = f"{name} (AP50 {curve.mean() * 100:.1f})"
        ax.plot(recall_thresholds, np.clip(curve, 0, None), label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall at IoU 0.5")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=7, ncol=max(1, len(class_names) // 15))
    fig.tight_layout()
    _save(fig, path)
