"""Balanced sampling of foreground and background examples for a loss.

N: labelled examples (anchors or proposals).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["subsample_labels"]


def subsample_labels(
    labels: Tensor, num_samples: int, positive_fraction: float, bg_label: int
) -> tuple[Tensor, Tensor]:
    """Draws at most ``num_samples`` examples, at most ``positive_fraction`` of them foreground;
    background fills the rest of the budget when there are too few foreground examples.

    Args:
        labels (Tensor[N]): -1 means ignore, ``bg_label`` background, anything else foreground.
        num_samples (int): total examples to draw.
        positive_fraction (float): the largest share of foreground examples, in [0, 1].
        bg_label (int): the label of background.

    Returns:
        pos_idx (Tensor[P]): int64 indices of the sampled foreground examples.
        neg_idx (Tensor[Q]): int64 indices of the sampled background examples.
    """
    positive = torch.nonzero((labels != -1) & (labels != bg_label), as_tuple=True)[0]
    negative = torch.nonzero(labels == bg_label, as_tuple=True)[0]
    num_pos = min(positive.numel(), int(num_samples * positive_fraction))
    num_neg = min(negative.numel(), num_samples - num_pos)
    perm_pos = torch.randperm(positive.numel(), device=positive.device)[:num_pos]
    perm_neg = torch.randperm(negative.numel(), device=negative.device)[:num_neg]
    return positive[perm_pos], negative[perm_neg]
