import math

import pytest
import torch

from d2lite.layers.losses import ciou_loss, diou_loss
from d2lite.modeling.box_regression import (
    Box2BoxTransform,
    Box2BoxTransformLinear,
    _dense_box_regression_loss,
)
from d2lite.structures import Boxes


def _random_boxes(n: int, size: float = 50.0) -> torch.Tensor:
    xy = torch.rand(n, 2) * size
    wh = torch.rand(n, 2) * size + 1.0
    return torch.cat([xy, xy + wh], dim=1)


def test_get_deltas_golden():
    t = Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0))
    src = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    tgt = torch.tensor([[5.0, 0.0, 25.0, 20.0]])
    # centre x moves 10 = 1 width; width doubles; y unchanged.
    expected = torch.tensor([[10.0 * 1.0, 0.0, 5.0 * math.log(2.0), 0.0]])
    torch.testing.assert_close(t.get_deltas(src, tgt), expected)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_round_trip(weights):
    torch.manual_seed(0)
    t = Box2BoxTransform(weights=weights)
    src, tgt = _random_boxes(20), _random_boxes(20)
    decoded = t.apply_deltas(t.get_deltas(src, tgt), src)
    torch.testing.assert_close(decoded, tgt, atol=1e-4, rtol=1e-4)


def test_apply_deltas_per_class_layout():
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 30.0, 50.0]])
    deltas = torch.zeros(2, 3 * 4)
    deltas[0, 4:8] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # class 1 of box 0 shifts by one width
    out = t.apply_deltas(deltas, boxes)
    assert out.shape == (2, 12)
    torch.testing.assert_close(out[0, 0:4], boxes[0])
    torch.testing.assert_close(out[0, 4:8], torch.tensor([10.0, 0.0, 20.0, 10.0]))
    torch.testing.assert_close(out[1].view(3, 4), boxes[1].expand(3, 4))


def test_apply_deltas_clamps_scale():
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    out = t.apply_deltas(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), torch.tensor([[0.0, 0, 16, 16]]))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 2] - out[0, 0], torch.tensor(1000.0), rtol=1e-4, atol=1e-2)


def test_linear_round_trip():
    torch.manual_seed(0)
    t = Box2BoxTransformLinear()
    src = _random_boxes(10)
    ctr = (src[:, :2] + src[:, 2:]) / 2
    tgt = torch.cat([ctr - torch.rand(10, 2) * 5, ctr + torch.rand(10, 2) * 5], dim=1)
    torch.testing.assert_close(t.apply_deltas(t.get_deltas(src, tgt), src), tgt)


def test_dense_loss_smooth_l1_and_giou_zero_at_target():
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    anchors = [Boxes(_random_boxes(6)), Boxes(_random_boxes(4))]
    all_anchors = torch.cat([a.tensor for a in anchors])
    gt = [_random_boxes(10), _random_boxes(10)]
    perfect = torch.stack([t.get_deltas(all_anchors, g) for g in gt])
    pred = [perfect[:, :6], perfect[:, 6:]]
    fg = torch.rand(2, 10) > 0.3
    loss = _dense_box_regression_loss(anchors, t, pred, gt, fg, "smooth_l1")
    assert loss.item() == pytest.approx(0.0, abs=1e-4)
    giou = _dense_box_regression_loss(anchors, t, pred, gt, fg, "giou")
    assert giou.item() == pytest.approx(0.0, abs=1e-3)
    off = [p + 0.5 for p in pred]
    l1 = _dense_box_regression_loss(anchors, t, off, gt, fg, "smooth_l1")
    assert l1.item() == pytest.approx(0.5 * 4 * fg.sum().item(), rel=1e-4)


def test_dense_loss_diou_and_ciou_on_the_decoded_boxes():
    torch.manual_seed(0)
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    anchors = [Boxes(_random_boxes(6))]
    gt = [_random_boxes(6)]
    perfect = t.get_deltas(anchors[0].tensor, gt[0])[None]
    fg = torch.ones(1, 6, dtype=torch.bool)
    off = perfect + 0.3
    decoded = t.apply_deltas(off[0], anchors[0].tensor)
    for name, loss in (("diou", diou_loss), ("ciou", ciou_loss)):
        at_target = _dense_box_regression_loss(anchors, t, [perfect], gt, fg, name)
        assert at_target.item() == pytest.approx(0.0, abs=1e-3)
        got = _dense_box_regression_loss(anchors, t, [off], gt, fg, name)
        torch.testing.assert_close(got, loss(decoded, gt[0], reduction="sum"))


def test_dense_loss_rejects_unknown_type():
    # "diou" was refused before d2lite had it; an unknown name still is, naming the choices.
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="'l2'.*diou"):
        _dense_box_regression_loss(
            [torch.zeros(1, 4)], t, [torch.zeros(1, 1, 4)], [torch.zeros(1, 4)], ..., "l2"
        )
