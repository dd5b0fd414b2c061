"""ROIAlign splits many boxes over threads on the CPU: same outputs and input gradients as
torchvision's single call."""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from d2lite.layers import ROIAlign
from d2lite.layers.roi_align import _chunks


def _boxes(k: int, size: float, num_images: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g) * size * 0.8
    wh = 1 + torch.rand(k, 2, generator=g) * size * 0.5
    idx = torch.randint(0, num_images, (k, 1), generator=g).float()
    return torch.cat([idx, xy, xy + wh], dim=1)


@pytest.mark.parametrize("sampling_ratio,aligned", [(0, True), (2, False)])
def test_threaded_roi_align_matches_torchvision(sampling_ratio, aligned, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    x = torch.randn(2, 8, 20, 24)
    rois = _boxes(400, 80.0, 2)
    assert len(_chunks(len(rois))) == 3  # the threaded path really runs
    pooler = ROIAlign((7, 5), 0.25, sampling_ratio, aligned)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    out = pooler(x1, rois)
    ref = roi_align(x2, rois, (7, 5), 0.25, sampling_ratio, aligned)
    assert out.shape == (400, 8, 7, 5)
    assert torch.equal(out, ref)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    # Only the order of the float additions differs.
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)


def test_few_boxes_take_one_call_and_channels_last_input_works():
    assert len(_chunks(10)) == 1
    x = torch.randn(1, 4, 16, 16).to(memory_format=torch.channels_last)
    rois = _boxes(200, 60.0, 1)
    out = ROIAlign(7, 0.25, 0)(x, rois)
    assert torch.equal(out, roi_align(x.contiguous(), rois, 7, 0.25, 0, True))
    assert ROIAlign(7, 0.25, 0)(x, rois[:0]).shape == (0, 4, 7, 7)
