"""Balanced sampling of foreground and background examples for a loss.

N: labelled examples (anchors or proposals).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

__all__ = ["subsample_labels", "sampling_generators", "get_sampling_generator"]

# The generators of the images of the batch being trained on, set by GeneralizedRCNN.forward.
# A context variable rather than an argument: the RPN's and ROI heads' signatures stay
# Detectron2's, and user heads that know nothing of it keep working.
_SAMPLING_GENERATORS: ContextVar[Sequence[torch.Generator] | None] = ContextVar(
    "d2lite_sampling_generators", default=None
)


@contextmanager
def sampling_generators(generators: Sequence[torch.Generator] | None) -> Iterator[None]:
    """Within the block, the per-image label sampling of the RPN and ROI heads draws from
    ``generators[i]`` for the i-th image of the batch; with None, from torch's global RNG.

    Args:
        generators (Sequence[torch.Generator] | None): one per image of the batch, each on
            the device of the labels it samples.
    """
    token = _SAMPLING_GENERATORS.set(generators)
    try:
        yield
    finally:
        _SAMPLING_GENERATORS.reset(token)


def get_sampling_generator(image_index: int) -> torch.Generator | None:
    """Returns the generator of the ``image_index``-th image of the batch, or None (draw from
    torch's global RNG) outside :func:`sampling_generators`."""
    generators = _SAMPLING_GENERATORS.get()
    return None if generators is None else generators[image_index]


def subsample_labels(
    labels: Tensor,
    num_samples: int,
    positive_fraction: float,
    bg_label: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draws at most ``num_samples`` examples, at most ``positive_fraction`` of them foreground;
    background fills the rest of the budget when there are too few foreground examples.

    Args:
        labels (Tensor[N]): -1 means ignore, ``bg_label`` background, anything else foreground.
        num_samples (int): total examples to draw.
        positive_fraction (float): the largest share of foreground examples, in [0, 1].
        bg_label (int): the label of background.
        generator (torch.Generator | None): the source of randomness, on the device of
            ``labels``. Defaults to None (torch's global RNG, as in Detectron2).

    Returns:
        pos_idx (Tensor[P]): int64 indices of the sampled foreground examples.
        neg_idx (Tensor[Q]): int64 indices of the sampled background examples.
    """
    positive = torch.nonzero((labels != -1) & (labels != bg_label), as_tuple=True)[0]
    negative = torch.nonzero(labels == bg_label, as_tuple=True)[0]
    num_pos = min(positive.numel(), int(num_samples * positive_fraction))
    num_neg = min(negative.numel(), num_samples - num_pos)
    # Positives first, then negatives: Detectron2's order of draws, on which its golden-loss
    # tests depend.
    perm_pos = torch.randperm(positive.numel(), device=positive.device, generator=generator)
    perm_neg = torch.randperm(negative.numel(), device=negative.device, generator=generator)
    return positive[perm_pos[:num_pos]], negative[perm_neg[:num_neg]]
