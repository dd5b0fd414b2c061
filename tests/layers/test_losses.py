"""Distance-IoU and Complete-IoU losses on boxes whose terms are easy to compute by hand."""
from __future__ import annotations

import math

import pytest
import torch

from d2lite.layers import ciou_loss, diou_loss

# Shifted by half its width: IoU 2/6, enclosing box 3 x 2 (diagonal^2 13), centres 1 apart.
_SHIFTED = (torch.tensor([0.0, 0.0, 2.0, 2.0]), torch.tensor([1.0, 0.0, 3.0, 2.0]))
# Same corner, 4 x 2 against 2 x 2: IoU 4/8, enclosing box 4 x 2 (diagonal^2 20), centres 1 apart.
_WIDER = (torch.tensor([0.0, 0.0, 4.0, 2.0]), torch.tensor([0.0, 0.0, 2.0, 2.0]))


@pytest.mark.parametrize("loss_fn", [diou_loss, ciou_loss])
def test_identical_boxes_cost_nothing(loss_fn):
    box = torch.tensor([[3.0, 1.0, 7.0, 9.0]])
    assert loss_fn(box, box).tolist() == pytest.approx([0.0], abs=1e-6)


def test_diou_terms():
    assert diou_loss(*_SHIFTED).item() == pytest.approx(1 - 1 / 3 + 1 / 13, rel=1e-5)
    assert diou_loss(*_WIDER).item() == pytest.approx(1 - 0.5 + 1 / 20, rel=1e-5)
    # Disjoint boxes still get a gradient signal from the centre distance: 1 + 8 / 18.
    far = diou_loss(torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([2.0, 2.0, 3.0, 3.0]))
    assert far.item() == pytest.approx(1 + 8 / 18, rel=1e-5)


def test_ciou_adds_the_aspect_ratio_term():
    # Equal aspect ratios: v = 0, so CIoU == DIoU.
    assert ciou_loss(*_SHIFTED).item() == pytest.approx(diou_loss(*_SHIFTED).item(), rel=1e-6)
    v = 4 / math.pi**2 * (math.atan(2 / 2) - math.atan(4 / 2)) ** 2
    alpha = v / (1 - 0.5 + v)
    assert ciou_loss(*_WIDER).item() == pytest.approx(1 - 0.5 + 1 / 20 + alpha * v, rel=1e-5)


@pytest.mark.parametrize("loss_fn", [diou_loss, ciou_loss])
def test_reductions_and_empty_mean(loss_fn):
    boxes1 = torch.stack([_SHIFTED[0], _WIDER[0]])
    boxes2 = torch.stack([_SHIFTED[1], _WIDER[1]])
    per_pair = loss_fn(boxes1, boxes2)
    assert per_pair.shape == (2,)
    assert loss_fn(boxes1, boxes2, reduction="sum").item() == pytest.approx(per_pair.sum().item())
    assert loss_fn(boxes1, boxes2, reduction="mean").item() == pytest.approx(per_pair.mean().item())
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = loss_fn(empty, torch.zeros(0, 4), reduction="mean")
    assert loss.item() == 0.0
    loss.backward()
    assert empty.grad.shape == (0, 4)


def test_ciou_gradient_treats_alpha_as_constant():
    pred = _WIDER[0].clone().requires_grad_(True)
    ciou_loss(pred, _WIDER[1]).backward()
    # d(alpha * v)/dw with alpha held fixed, plus DIoU's own gradient, checked by finite
    # differences of the loss with alpha frozen at its value.
    v = lambda w: 4 / math.pi**2 * (math.atan(1.0) - math.atan(w / 2)) ** 2  # noqa: E731
    alpha = v(4.0) / (0.5 + v(4.0))

    def frozen_alpha_loss(x2: float) -> float:
        box = torch.tensor([0.0, 0.0, x2, 2.0], dtype=torch.float64)
        return diou_loss(box, _WIDER[1].double()).item() + alpha * v(x2)

    h = 1e-4
    numeric = (frozen_alpha_loss(4.0 + h) - frozen_alpha_loss(4.0 - h)) / (2 * h)
    assert pred.grad[2].item() == pytest.approx(numeric, rel=1e-3)


def test_inverted_boxes_are_rejected():
    with pytest.raises(AssertionError, match="x1 <= x2"):
        diou_loss(torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
