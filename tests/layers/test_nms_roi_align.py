from __future__ import annotations

import pytest
import torch

from d2lite.layers import ROIAlign, batched_nms, nms


def test_nms_keeps_highest_of_overlapping():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]


def test_batched_nms_is_per_category():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [1, 1, 10, 10]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.85])
    idxs = torch.tensor([0, 0, 1])
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 2]
    empty = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5)
    assert empty.numel() == 0


def test_roi_align_constant_map_and_shape():
    feat = torch.full((2, 3, 16, 16), 5.0)
    rois = torch.tensor([[0, 0, 0, 8, 8], [1, 2, 2, 12, 14]], dtype=torch.float)
    pool = ROIAlign((7, 7), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    out = pool(feat, rois)
    assert out.shape == (2, 3, 7, 7)
    torch.testing.assert_close(out, torch.full_like(out, 5.0))


def test_roi_align_aligned_samples_pixel_centres():
    # A linear ramp: with aligned=True the 1x1 bin over [0, 4) averages pixel centres 0..3.
    feat = torch.arange(8, dtype=torch.float).repeat(8, 1)[None, None]
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float)
    out = ROIAlign((1, 1), 1.0, 2, aligned=True)(feat, rois)
    assert out.item() == pytest.approx(1.5)
    out_legacy = ROIAlign((1, 1), 1.0, 2, aligned=False)(feat, rois)
    assert out_legacy.item() == pytest.approx(2.0)


def test_roi_align_rejects_bad_rois():
    with pytest.raises(AssertionError, match="rois must be"):
        ROIAlign(7, 1.0, 0)(torch.zeros(1, 1, 4, 4), torch.zeros(3, 4))
