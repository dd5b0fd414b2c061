"""Detection diagnostics: a class confusion matrix and per-class precision-recall curves.

Shapes: K classes, G ground-truth boxes and D detections of one image, R recall thresholds.
The confusion matrix is ``[K + 1, K + 1]``: rows are ground-truth classes plus a last
"background" row (detections that match no ground truth: false positives), columns are predicted
classes plus a last "background" column (ground truth that no detection matched: misses).

matplotlib is imported only when a figure is drawn, so ``import d2lite`` does not pay for it.
"""
from __future__ import annotations

import csv
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_iou

from d2lite.utils.file_io import atomic_output
from d2lite.extras.plot_metrics import save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


# How the background row and column read in the pictures (the CSV keeps "background").
_FP_LABEL = "background\n(false positive)"
_MISS_LABEL = "background\n(missed)"


def _draw_matrix(
    ax: Axes, values: np.ndarray, labels: list[str], texts: np.ndarray, *, shares: bool
) -> None:
    """One heat map with a text per cell (none for empty cells, which read as 0)."""
    from matplotlib.ticker import PercentFormatter

    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if shares else None)
    fmt = PercentFormatter(1.0) if shares else None
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, format=fmt)
    n = len(labels)
    ax.set_xticks(range(n), labels=labels[:-1] + [_MISS_LABEL], rotation=45, ha="right")
    ax.set_yticks(range(n), labels=labels[:-1] + [_FP_LABEL])
    ax.set_xlabel("predicted class\n(last column: ground truth that no detection matched)")
    if not shares:  # the panels share their rows: one label is enough
        ax.set_ylabel("ground-truth class\n(last row: detections that matched no ground truth)")
    if n > 30:
        return  # too small to read
    threshold = values.max() / 2 if values.size else 0
    for (i, j), text in np.ndenumerate(texts):
        if text:
            color = "white" if values[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: list[str],
    path: str | None = None,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> Figure:
    """Saves the confusion matrix as two heat maps side by side: the counts, and each row
    divided by its sum (where a class's ground-truth boxes went; the last row: which classes
    the false positives were given). Empty cells are 0.

    Args:
        matrix (np.ndarray[K + 1, K + 1]): from :func:`confusion_matrix`.
        class_names (list[str]): K names.
        path (str | None): the PNG. Defaults to None (only return the figure).
        iou_threshold (float): the IoU the matrix was counted at, for the title.
            Defaults to 0.5.
        score_threshold (float): the score below which detections were left out, for the
            title. Defaults to 0.5.

    Returns:
        Figure: the figure; its axes are titled "Counts" and "Share of each row".
    """
    from matplotlib.figure import Figure

    labels = list(class_names) + ["background"]
    sums = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, sums, out=np.zeros(matrix.shape), where=sums > 0)
    percents = np.char.add((shares * 100).round().astype(int).astype(str), "%")
    counts_text = np.where(matrix > 0, matrix.astype(str), "")
    shares_text = np.where(matrix > 0, percents, "")
    size = max(4.0, 0.55 * len(labels) + 2.5)
    fig = Figure(figsize=(2 * size + 1, size + 0.6))
    counts_ax, shares_ax = fig.subplots(1, 2)
    _draw_matrix(counts_ax, matrix, labels, counts_text, shares=False)
    counts_ax.set_title("Counts")
    _draw_matrix(shares_ax, shares, labels, shares_text, shares=True)
    shares_ax.set_title("Share of each row (a ground-truth class sums to 100%)")
    fig.suptitle(
        f"Confusion matrix: a detection matches a ground-truth box at IoU ≥ {iou_threshold:g}; "
        f"detections scoring below {score_threshold:g} are left out"
    )
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def _curve_styles(num_classes: int) -> list[tuple]:
    """A colour and line style per class: tab10 up to 10 classes, tab20 up to 20, then tab20
    again with dashed, dotted, ... lines, so no two curves look alike."""
    from matplotlib import colormaps

    if num_classes <= 10:
        colors = [colormaps["tab10"](i) for i in range(10)]
    else:
        # tab20 pairs a dark and a light shade of each hue: all dark ones first, so classes
        # 0 and 1 do not get two blues.
        colors = [colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)]]
    styles = ["-", "--", ":", "-."]
    n = len(colors)
    return [(colors[k % n], styles[(k // n) % len(styles)]) for k in range(num_classes)]


def plot_pr_curves(
    precision: np.ndarray,
    recall_thresholds: np.ndarray,
    class_names: list[str],
    path: str | None = None,
    *,
    iou_threshold: float = 0.5,
) -> Figure:
    """Saves one precision-recall curve per class in a single PNG, the legend outside the
    axes (in columns of 20 entries), so it stays readable with many classes.

    A class without ground truth gets no curve but a legend entry saying so, and the title
    counts them.

    Args:
        precision (np.ndarray[R, K]): COCOeval precision at one IoU, area "all", the largest
            maxDets; a class whose entries are all -1 has no ground truth.
        recall_thresholds (np.ndarray[R]): COCOeval's ``params.recThrs``.
        class_names (list[str]): K names.
        path (str | None): the PNG. Defaults to None (only return the figure).
        iou_threshold (float): the IoU of ``precision``, for the title. Defaults to 0.5.

    Returns:
        Figure: the figure; one axes, with a legend entry per class.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    ncol = max(1, math.ceil(len(class_names) / 20))
    fig = Figure(figsize=(6.5 + 2.3 * ncol, 5))
    ax = fig.add_subplot(1, 1, 1)
    handles, no_gt = [], []
    styles = _curve_styles(len(class_names))
    for k, (name, (color, style)) in enumerate(zip(class_names, styles)):
        curve = precision[:, k]
        if not (curve > -1).any():
            no_gt.append(name)
            handles.append(Line2D([], [], linestyle="none", label=f"{name}: no ground truth"))
            continue
        label = f"{name} (AP{iou_threshold * 100:.0f} {curve.mean() * 100:.1f})"
        curve = np.clip(curve, 0, None)
        handles += ax.plot(recall_thresholds, curve, style, color=color, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)  # a class never detected lies at 0: keep it off the axis line
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    title = f"Precision-recall at IoU {iou_threshold:g}"
    if no_gt:
        title += f"\nclasses without ground truth (no curve): {len(no_gt)} of {len(class_names)}"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(no_gt) == len(class_names):
        ax.text(0.5, 0.5, "No class has ground truth here", ha="center", va="center")
    if handles:
        legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                           fontsize=8, ncol=ncol, frameon=False)  # fmt: skip
        for text in legend.get_texts():
            if text.get_text().endswith(": no ground truth"):
                text.set(color="gray", style="italic")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
