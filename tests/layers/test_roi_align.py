"""ROIAlign on the CPU as per-box matrix products: the same outputs and input gradients as
torchvision's kernel, up to the order of the float additions."""
from __future__ import annotations

import importlib

import pytest
import torch
from torchvision.ops import roi_align

from d2lite.layers import ROIAlign

# The module itself: the attribute d2lite.layers.roi_align is the function, as in Detectron2.
roi_align_module = importlib.import_module("d2lite.layers.roi_align")


def _rois(k: int, size: float, num_images: int, seed: int = 0) -> torch.Tensor:
    """Boxes in image pixels, some hanging over the map's edges or wholly outside it."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g) * size * 1.3 - size * 0.2
    wh = torch.rand(k, 2, generator=g) * size * 0.6
    idx = torch.randint(0, num_images, (k, 1), generator=g).float()
    return torch.cat([idx, xy, xy + wh], dim=1)


def _edge_cases() -> torch.Tensor:
    return torch.tensor(
        [
            [0, 10.0, 10.0, 10.0, 10.0],  # zero size
            [0, 30.0, 30.0, 20.0, 25.0],  # negative size
            [1, -50.0, -50.0, -10.0, -20.0],  # wholly outside, before the map
            [1, 200.0, 10.0, 260.0, 40.0],  # wholly outside, after the map
            [0, 0.0, 0.0, 96.0, 80.0],  # the whole map
            [1, 94.0, 78.0, 95.5, 79.9],  # a sliver at the far corner
        ]
    )


@pytest.fixture
def no_torchvision_kernel(monkeypatch):
    """Makes the torchvision fallback fail, so a test proves the separable path ran."""

    def fail(*args, **kwargs):
        raise AssertionError("torchvision's roi_align was called")

    monkeypatch.setattr(roi_align_module, "roi_align", fail)
    # The tests' feature maps are narrow, to stay fast.
    monkeypatch.setattr(roi_align_module, "_MIN_SEPARABLE_CHANNELS", 1)


@pytest.mark.parametrize("sampling_ratio,aligned", [(0, True), (2, False), (0, False), (3, True)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_torchvision(sampling_ratio, aligned, channels_last, no_torchvision_kernel):
    x = torch.randn(2, 8, 20, 24)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    rois = torch.cat([_rois(300, 96.0, 2), _edge_cases()])
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = ROIAlign((7, 5), 0.25, sampling_ratio, aligned)(x1, rois)
    ref = roi_align(x2, rois, (7, 5), 0.25, sampling_ratio, aligned)
    assert out.shape == (len(rois), 8, 7, 5)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-6)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=2e-5)
    assert x1.grad.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


def test_boxes_off_the_map_pool_zeros(no_torchvision_kernel):
    x = torch.randn(2, 4, 24, 24)
    out = ROIAlign(7, 0.25, 0)(x, _edge_cases()[:4])
    assert torch.equal(out, torch.zeros_like(out))


def test_gradcheck_float64(no_torchvision_kernel):
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    rois = _rois(12, 40.0, 2, seed=1).double()
    assert torch.autograd.gradcheck(lambda t: ROIAlign((3, 2), 0.25, 0)(t, rois), (x,))


def test_no_boxes(monkeypatch):
    monkeypatch.setattr(roi_align_module, "_MIN_SEPARABLE_CHANNELS", 1)
    x = torch.randn(1, 4, 16, 16)
    assert ROIAlign(7, 0.25, 0)(x, torch.zeros(0, 5)).shape == (0, 4, 7, 7)


def test_autocast_pools_in_float32_from_float32_boxes(no_torchvision_kernel):
    x = torch.randn(1, 4, 16, 16).bfloat16()
    rois = _rois(20, 60.0, 1)
    rois[:, 1:] += 0.3  # not representable in bfloat16 at these magnitudes
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ROIAlign(7, 0.25, 0)(x, rois)
    ref = roi_align(x.float(), rois, 7, 0.25, 0, True).bfloat16()
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref)


def test_non_finite_boxes_take_torchvision_kernel(monkeypatch):
    # Narrow maps take torchvision's kernel anyway: lift that so the guard itself is tested.
    monkeypatch.setattr(roi_align_module, "_MIN_SEPARABLE_CHANNELS", 1)
    x = torch.randn(1, 4, 16, 16)
    rois = _rois(20, 60.0, 1)
    rois[3, 2] = float("nan")
    rois[5, 3] = float("inf")
    out = ROIAlign(7, 0.25, 0)(x, rois)
    ref = roi_align(x, rois, 7, 0.25, 0, True)
    finite = torch.isfinite(rois).all(dim=1)
    assert torch.equal(out[finite], ref[finite])


def test_narrow_feature_maps_take_torchvision_kernel():
    x = torch.randn(1, roi_align_module._MIN_SEPARABLE_CHANNELS - 1, 12, 12)
    rois = _rois(30, 48.0, 1)
    assert torch.equal(ROIAlign(7, 0.25, 0)(x, rois), roi_align(x, rois, 7, 0.25, 0, True))


@pytest.mark.parametrize("threads", [2, 3])
def test_boxes_split_over_threads_give_the_one_thread_result_bit_for_bit(
    threads, no_torchvision_kernel, monkeypatch
):
    x = torch.randn(2, 16, 24, 28).contiguous(memory_format=torch.channels_last)
    rois = torch.cat([_rois(200, 100.0, 2, seed=3), _edge_cases()])
    grad = torch.randn(len(rois), 16, 7, 7)
    results = []
    torch_threads = torch.get_num_threads()
    for n in (1, threads):
        monkeypatch.setattr(roi_align_module, "_threads", lambda boxes, n=n: n)
        xi = x.clone().requires_grad_(True)
        torch.set_num_threads(1)  # the one-part run's GEMMs single-threaded too
        try:
            out = ROIAlign(7, 0.25, 0, True)(xi, rois)
            out.backward(grad)
        finally:
            torch.set_num_threads(torch_threads)
        results.append((out.detach(), xi.grad))
    (out1, grad1), (out_n, grad_n) = results
    assert torch.equal(out1, out_n), (out1 - out_n).abs().max()
    assert torch.equal(grad1, grad_n), (grad1 - grad_n).abs().max()
    assert torch.get_num_threads() == torch_threads  # the split restores the pool's size


def test_boxes_split_over_threads_under_inference_mode(no_torchvision_kernel, monkeypatch):
    # DefaultPredictor runs the model in inference mode, which the worker threads must share.
    monkeypatch.setattr(roi_align_module, "_threads", lambda boxes: 2)
    x = torch.randn(1, 8, 20, 24)
    rois = _rois(64, 96.0, 1)
    with torch.inference_mode():
        out = ROIAlign(7, 0.25, 0, True)(x, rois)
    torch.testing.assert_close(out, roi_align(x, rois, 7, 0.25, 0, True), rtol=1e-5, atol=2e-6)
