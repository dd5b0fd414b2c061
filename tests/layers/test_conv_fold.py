"""Conv2d folds a FrozenBatchNorm2d norm into its weight and bias: same outputs and gradients
as running the norm separately, same state-dict keys."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from d2lite.layers import Conv2d, FrozenBatchNorm2d


def _frozen_bn(channels: int) -> FrozenBatchNorm2d:
    bn = FrozenBatchNorm2d(channels)
    g = torch.Generator().manual_seed(1)
    bn.weight.copy_(torch.rand(channels, generator=g) + 0.5)
    bn.bias.copy_(torch.randn(channels, generator=g))
    bn.running_mean.copy_(torch.randn(channels, generator=g))
    bn.running_var.copy_(torch.rand(channels, generator=g) + 0.1)
    return bn


def _outputs_and_grads(conv: Conv2d, x: torch.Tensor, fold: bool, monkeypatch):
    monkeypatch.setattr(Conv2d, "fold_frozen_bn", fold)
    x = x.clone().requires_grad_(True)
    conv.zero_grad()
    y = conv(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    grads = [p.grad.clone() for p in conv.parameters() if p.requires_grad]
    return y.detach(), x.grad, grads


@pytest.mark.parametrize("bias", [False, True])
def test_folded_frozen_bn_matches_separate_norm(bias, monkeypatch):
    torch.manual_seed(0)
    conv = Conv2d(6, 10, 3, padding=1, bias=bias, norm=_frozen_bn(10), activation=torch.relu)
    x = torch.randn(2, 6, 9, 11)
    ref = _outputs_and_grads(conv, x, False, monkeypatch)
    fused = _outputs_and_grads(conv, x, True, monkeypatch)
    torch.testing.assert_close(fused[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused[1], ref[1], rtol=1e-5, atol=1e-5)
    assert len(fused[2]) == (2 if bias else 1)
    for got, want in zip(fused[2], ref[2]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_fold_keeps_state_dict_and_buffers():
    conv = Conv2d(3, 4, 1, bias=False, norm=_frozen_bn(4))
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    conv(torch.randn(1, 3, 5, 5))
    assert list(conv.state_dict()) == [
        "weight", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"
    ]
    for k, v in conv.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_trainable_bn_is_not_folded():
    torch.manual_seed(0)
    conv = Conv2d(3, 4, 3, padding=1, bias=False, norm=nn.BatchNorm2d(4)).train()
    x = torch.randn(2, 3, 6, 6)
    y = conv(x)
    # Batch statistics were used (so the norm ran): every channel is standardised.
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    assert conv.norm.num_batches_tracked.item() == 1


def test_scale_and_shift_is_what_forward_applies():
    bn = _frozen_bn(5)
    x = torch.randn(2, 5, 3, 3)
    scale, shift = bn.scale_and_shift()
    assert scale.shape == shift.shape == (5,)
    torch.testing.assert_close(bn(x), x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1))
