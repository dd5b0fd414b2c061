"""Assigns each prediction (anchor or proposal) to at most one ground-truth box.

M: ground-truth boxes, N: predictions.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["Matcher"]


class Matcher:
    """Matches every prediction to the ground truth it overlaps most and labels the match by IoU.

    With thresholds [t1, t2] and labels [l0, l1, l2], a prediction whose best IoU is in
    [-inf, t1) gets l0, [t1, t2) gets l1, [t2, inf] gets l2. Labels are 1 (foreground),
    0 (background) or -1 (ignored).
    """

    def __init__(
        self, thresholds: list[float], labels: list[int], allow_low_quality_matches: bool = False
    ) -> None:
        """
        Args:
            thresholds (list[float]): increasing IoU thresholds splitting [0, 1] into intervals.
            labels (list[int]): one label in {-1, 0, 1} per interval (len(thresholds) + 1).
            allow_low_quality_matches (bool): also label 1 the predictions that are the best
                match of some ground-truth box even below the top threshold, so that every
                ground-truth box has a positive. Defaults to False.
        """
        thresholds = [-float("inf")] + list(thresholds) + [float("inf")]
        if any(low > high for low, high in zip(thresholds[:-1], thresholds[1:])):
            raise ValueError(f"Matcher thresholds must be increasing, got {thresholds[1:-1]}")
        if any(label not in (-1, 0, 1) for label in labels):
            raise ValueError(f"Matcher labels must be -1, 0 or 1, got {list(labels)}")
        if len(labels) != len(thresholds) - 1:
            raise ValueError(
                f"Matcher needs len(labels) == len(thresholds) + 1, got {len(labels)} labels "
                f"for {len(thresholds) - 2} thresholds"
            )
        self.thresholds = thresholds
        self.labels = list(labels)
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: Tensor) -> tuple[Tensor, Tensor]:
        """
        Args:
            match_quality_matrix (Tensor[M, N]): pairwise quality (IoU) of ground truth and
                predictions, all >= 0.

        Returns:
            matches (Tensor[N]): int64 index in [0, M) of the matched ground truth.
            match_labels (Tensor[N]): int8 label of each match (-1, 0 or 1).
        """
        assert match_quality_matrix.dim() == 2, match_quality_matrix.shape
        if match_quality_matrix.numel() == 0:
            # No ground truth (or no prediction): everything gets the lowest interval's label.
            num_preds = match_quality_matrix.size(1)
            matches = match_quality_matrix.new_full((num_preds,), 0, dtype=torch.int64)
            return matches, matches.new_full((num_preds,), self.labels[0], dtype=torch.int8)
        assert torch.all(match_quality_matrix >= 0)
        matched_vals, matches = match_quality_matrix.max(dim=0)
        match_labels = matches.new_full(matches.size(), 1, dtype=torch.int8)
        for label, low, high in zip(self.labels, self.thresholds[:-1], self.thresholds[1:]):
            match_labels[(matched_vals >= low) & (matched_vals < high)] = label
        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(match_labels, match_quality_matrix)
        return matches, match_labels

    def set_low_quality_matches_(self, match_labels: Tensor, match_quality_matrix: Tensor) -> None:
        """Labels 1 every prediction that ties for the highest quality with some ground truth.

        Ties matter: several anchors can share the best IoU with a box, and all of them are kept
        (as in the Faster R-CNN paper), while ``matches`` keeps pointing at their own best box.
        """
        highest_quality_foreach_gt, _ = match_quality_matrix.max(dim=1)
        is_best = match_quality_matrix == highest_quality_foreach_gt[:, None]
        pred_inds = torch.nonzero(is_best, as_tuple=True)[1]
        match_labels[pred_inds] = 1
