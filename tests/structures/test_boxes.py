from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from d2lite.structures import (
    Boxes,
    BoxMode,
    matched_pairwise_iou,
    pairwise_intersection,
    pairwise_ioa,
    pairwise_iou,
    pairwise_point_box_distance,
)


def test_boxmode_convert_list_tuple_numpy_tensor():
    assert BoxMode.convert([1, 2, 3, 4], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) == [1, 2, 4, 6]
    assert BoxMode.convert((1.0, 2.0, 4.0, 6.0), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS) == (
        1.0,
        2.0,
        3.0,
        4.0,
    )
    arr = np.array([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    out = BoxMode.convert(arr, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [[0, 0, 2, 3], [1, 1, 2, 2]])
    np.testing.assert_allclose(arr[0], [0, 0, 2, 3])  # input untouched
    t = torch.tensor([[0.0, 0.0, 2.0, 3.0]])
    back = BoxMode.convert(BoxMode.convert(t, 1, 0), 0, 1)
    assert torch.equal(back, t)


def test_boxmode_same_mode_and_relative():
    box = [0.1, 0.1, 0.2, 0.2]
    assert BoxMode.convert(box, BoxMode.XYXY_REL, BoxMode.XYXY_REL) is box
    with pytest.raises(AssertionError, match="Relative mode"):
        BoxMode.convert(box, BoxMode.XYXY_REL, BoxMode.XYXY_ABS)
    with pytest.raises(AssertionError, match="Relative mode"):
        BoxMode.convert(box, BoxMode.XYWH_ABS, BoxMode.XYWH_REL)
    assert int(BoxMode.XYWH_ABS) == 1 and BoxMode(3) is BoxMode.XYWH_REL


def test_boxmode_empty_tensor():
    out = BoxMode.convert(torch.zeros(0, 4), BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
    assert out.shape == (0, 4)


def test_boxmode_rotated_box_to_its_enclosing_box():
    # A 30x20 box at (50, 50): unrotated, turned a quarter, and a diagonal square of side sqrt(2).
    rows = [[50, 50, 30, 20, 0], [50, 50, 30, 20, 90], [1, 1, math.sqrt(2), math.sqrt(2), 45]]
    expected = [[35, 40, 65, 60], [40, 35, 60, 65], [0, 0, 2, 2]]
    for dtype in (torch.float32, torch.float64):
        out = BoxMode.convert(torch.tensor(rows, dtype=dtype), BoxMode.XYWHA_ABS, BoxMode.XYXY_ABS)
        assert out.dtype == dtype
        torch.testing.assert_close(out, torch.tensor(expected, dtype=dtype), atol=1e-5, rtol=0)
    arr = BoxMode.convert(np.array(rows, dtype=np.float32), 4, 0)
    assert arr.dtype == np.float32 and np.allclose(arr, expected, atol=1e-5)
    assert BoxMode.convert((50, 50, 30, 20, 0), 4, 0) == (35, 40, 65, 60)
    # Through XYXY, to XYWH: the enclosing box again, as (x0, y0, w, h).
    assert BoxMode.convert([50, 50, 30, 20, 90], 4, 1) == [40, 35, 20, 30]


def test_boxmode_axis_aligned_box_to_rotated():
    xywh = [[30, 40, 70, 60], [-1, -1, 2, 2]]
    expected = [[65, 70, 70, 60, 0], [0, 0, 2, 2, 0]]
    for dtype in (torch.float32, torch.float64):
        out = BoxMode.convert(torch.tensor(xywh, dtype=dtype), BoxMode.XYWH_ABS, BoxMode.XYWHA_ABS)
        assert out.dtype == dtype and out.shape == (2, 5)
        torch.testing.assert_close(out, torch.tensor(expected, dtype=dtype))
    assert BoxMode.convert([50, 50, 30, 20], 1, 4) == [65, 60, 30, 20, 0]
    # Integer inputs keep their dtype; the centre is computed in floating point first.
    ints = BoxMode.convert(np.array([[0, 0, 4, 6]]), 1, 4)
    assert ints.dtype == np.int64 and ints.tolist() == [[2, 3, 4, 6, 0]]
    assert BoxMode.convert([10.0, 20.0, 40.0, 30.0], 0, 4) == [25.0, 25.0, 30.0, 10.0, 0.0]


def test_boxmode_rotated_round_trip_and_bad_widths():
    boxes = torch.tensor([[3.0, 4.0, 10.0, 6.0], [0.0, 0.0, 1.0, 1.0]])
    rotated = BoxMode.convert(boxes, BoxMode.XYWH_ABS, BoxMode.XYWHA_ABS)
    torch.testing.assert_close(BoxMode.convert(rotated, 4, 1), boxes)
    with pytest.raises(AssertionError, match="5 numbers"):
        BoxMode.convert(torch.zeros(2, 4), BoxMode.XYWHA_ABS, BoxMode.XYXY_ABS)
    with pytest.raises(AssertionError, match="4 numbers"):
        BoxMode.convert(torch.zeros(2, 5), BoxMode.XYWH_ABS, BoxMode.XYWHA_ABS)
    with pytest.raises(AssertionError, match="4 or 5 numbers"):
        BoxMode.convert([[50, 50, 30, 20]], BoxMode.XYWH_ABS, BoxMode.XYWHA_ABS)
    assert BoxMode.convert(torch.zeros(0, 4), 1, 4).shape == (0, 5)


def test_boxes_init_and_empty():
    b = Boxes([[0, 0, 10, 20]])
    assert b.tensor.dtype == torch.float32 and b.tensor.shape == (1, 4)
    assert Boxes(torch.zeros(0)).tensor.shape == (0, 4)
    assert Boxes([]).tensor.shape == (0, 4)
    with pytest.raises(AssertionError, match=r"\[N, 4\]"):
        Boxes(torch.zeros(3, 5))
    with pytest.raises(AssertionError):
        Boxes(torch.zeros(4))


def test_boxes_area_clip_nonempty_scale_centers():
    b = Boxes(torch.tensor([[-5.0, -5.0, 10.0, 10.0], [2.0, 2.0, 2.0, 8.0], [0, 0, 30, 40]]))
    assert torch.allclose(b.area(), torch.tensor([225.0, 0.0, 1200.0]))
    assert b.nonempty().tolist() == [True, False, True]
    assert b.nonempty(threshold=20).tolist() == [False, False, True]
    assert torch.allclose(b.get_centers()[2], torch.tensor([15.0, 20.0]))
    c = b.clone()
    c.clip((20, 25))
    assert c.tensor.tolist()[0] == [0, 0, 10, 10]
    assert c.tensor.tolist()[2] == [0, 0, 25, 20]
    assert b.tensor[0, 0] == -5  # clone does not share storage
    c.scale(2.0, 0.5)
    assert c.tensor.tolist()[2] == [0, 0, 50, 10]
    bad = Boxes(torch.tensor([[0, 0, float("nan"), 1]]))
    with pytest.raises(AssertionError, match="infinite or NaN"):
        bad.clip((10, 10))


def test_boxes_inside_box():
    b = Boxes(torch.tensor([[0.0, 0, 5, 5], [-2, 0, 5, 5], [0, 0, 10, 10]]))
    assert b.inside_box((10, 10)).tolist() == [True, False, False]
    assert b.inside_box((10, 10), boundary_threshold=3).tolist() == [True, True, True]


def test_boxes_indexing_iter_cat_to():
    t = torch.arange(12, dtype=torch.float32).view(3, 4)
    b = Boxes(t)
    assert len(b) == 3
    assert b[1].tensor.shape == (1, 4) and b[1].tensor.tolist() == [[4, 5, 6, 7]]
    assert len(b[1:]) == 2
    assert len(b[torch.tensor([True, False, True])]) == 2
    assert b[torch.tensor([2, 0])].tensor[0, 0] == 8
    assert len(b[torch.zeros(3, dtype=torch.bool)]) == 0
    rows = list(b)
    assert len(rows) == 3 and rows[0].shape == (4,)
    c = Boxes.cat([b, Boxes(torch.zeros(0, 4)), b[0]])
    assert len(c) == 4
    assert len(Boxes.cat([])) == 0
    assert b.to("cpu").device == torch.device("cpu")
    assert "Boxes(" in repr(b)


def test_pairwise_iou_golden():
    b1 = Boxes(torch.tensor([[0.0, 0, 10, 10], [0, 0, 0, 0]]))
    b2 = Boxes(torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 0, 0]]))
    iou = pairwise_iou(b1, b2)
    expected = torch.tensor([[1.0, 25 / 175, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(iou, expected)
    assert not torch.isnan(iou).any()
    assert torch.allclose(pairwise_intersection(b1, b2)[0], torch.tensor([100.0, 25, 0, 0]))
    small, big = Boxes(torch.tensor([[0.0, 0, 10, 10]])), Boxes(torch.tensor([[5.0, 5, 25, 25]]))
    ioa = pairwise_ioa(small, big)
    assert torch.allclose(ioa, torch.tensor([[25 / 400]]))


def test_pairwise_iou_empty():
    e = Boxes(torch.zeros(0, 4))
    b = Boxes(torch.tensor([[0.0, 0, 1, 1]]))
    assert pairwise_iou(e, b).shape == (0, 1)
    assert pairwise_iou(b, e).shape == (1, 0)
    assert pairwise_ioa(e, e).shape == (0, 0)


def test_pairwise_point_box_distance():
    points = torch.tensor([[5.0, 5.0], [0.0, 20.0]])
    boxes = Boxes(torch.tensor([[0.0, 0, 10, 10], [2, 4, 6, 30], [1, 1, 2, 2]]))
    dist = pairwise_point_box_distance(points, boxes)
    assert dist.shape == (2, 3, 4)
    # (left, top, right, bottom): all positive only for a point inside the box.
    assert dist[0, 0].tolist() == [5, 5, 5, 5]
    assert dist[0, 1].tolist() == [3, 1, 1, 25]
    assert dist[1, 0].tolist() == [0, 20, 10, -10]
    assert (dist[1, 2] > 0).tolist() == [False, True, True, False]
    assert pairwise_point_box_distance(points, Boxes([])).shape == (2, 0, 4)


def test_matched_pairwise_iou():
    b1 = Boxes(torch.tensor([[0.0, 0, 10, 10], [0, 0, 2, 2], [0, 0, 0, 0]]))
    b2 = Boxes(torch.tensor([[5.0, 5, 15, 15], [0, 0, 2, 2], [0, 0, 0, 0]]))
    assert torch.allclose(matched_pairwise_iou(b1, b2), torch.tensor([25 / 175, 1.0, 0.0]))
    assert matched_pairwise_iou(Boxes([]), Boxes([])).shape == (0,)
    with pytest.raises(AssertionError, match="same number"):
        matched_pairwise_iou(b1, b2[:2])
