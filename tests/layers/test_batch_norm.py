from __future__ import annotations

import pytest
import torch
from torch import nn

from d2lite.layers import FrozenBatchNorm2d, get_norm


def test_frozen_bn_matches_eval_batchnorm():
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    bn.eval()
    frozen = FrozenBatchNorm2d.convert_frozen_batchnorm(bn)
    assert isinstance(frozen, FrozenBatchNorm2d)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(frozen(x), bn(x), atol=1e-5, rtol=1e-5)


def test_frozen_bn_fresh_is_identity_and_has_no_params():
    frozen = FrozenBatchNorm2d(3)
    x = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(frozen(x), x)
    assert list(frozen.parameters()) == []
    assert set(frozen.state_dict()) == {"weight", "bias", "running_mean", "running_var"}


def test_convert_frozen_batchnorm_recurses_into_children():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Sequential(nn.BatchNorm2d(8)))
    FrozenBatchNorm2d.convert_frozen_batchnorm(model)
    assert isinstance(model[1][0], FrozenBatchNorm2d)
    assert isinstance(model[0], nn.Conv2d)


def test_frozen_bn_loads_checkpoint_without_running_stats():
    frozen = FrozenBatchNorm2d(2)
    state = {"weight": torch.tensor([2.0, 3.0]), "bias": torch.tensor([1.0, -1.0])}
    result = frozen.load_state_dict(state, strict=False)
    assert result.missing_keys == []
    torch.testing.assert_close(frozen.running_mean, torch.zeros(2))
    torch.testing.assert_close(frozen.running_var, torch.ones(2))
    out = frozen(torch.ones(1, 2, 1, 1)).flatten()
    torch.testing.assert_close(out, torch.tensor([3.0, 2.0]), atol=1e-4, rtol=0)


def test_frozen_bn_upgrades_version_2_running_var():
    model = nn.Sequential(FrozenBatchNorm2d(2))
    state = model.state_dict()
    state["0.running_var"] = torch.tensor([4.0, 9.0])
    state._metadata["0"]["version"] = 2
    model.load_state_dict(state)
    torch.testing.assert_close(model[0].running_var, torch.tensor([4.0, 9.0]) - 1e-5)


@pytest.mark.parametrize(
    "name, cls",
    [("BN", nn.BatchNorm2d), ("FrozenBN", FrozenBatchNorm2d), ("GN", nn.GroupNorm),
     ("SyncBN", nn.SyncBatchNorm)],
)
def test_get_norm_names(name, cls):
    norm = get_norm(name, 64)
    assert isinstance(norm, cls)
    if name == "GN":
        assert norm.num_groups == 32


def test_get_norm_empty_callable_and_unknown():
    assert get_norm("", 8) is None
    assert get_norm(None, 8) is None
    assert isinstance(get_norm(lambda c: nn.GroupNorm(2, c), 8), nn.GroupNorm)
    with pytest.raises(ValueError, match="Unknown norm 'XYZ'"):
        get_norm("XYZ", 8)


def test_frozen_bn_keeps_low_precision_dtype():
    frozen = FrozenBatchNorm2d(3)
    frozen.weight.fill_(2.0)
    x = torch.ones(1, 3, 2, 2, dtype=torch.bfloat16)
    out = frozen(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), torch.full((1, 3, 2, 2), 2.0), atol=0.02, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_convert_frozen_batchnorm_keeps_device():
    bn = nn.BatchNorm2d(4).cuda().eval()
    frozen = FrozenBatchNorm2d.convert_frozen_batchnorm(bn)
    assert frozen.running_var.is_cuda
    x = torch.randn(2, 4, 3, 3, device="cuda")
    torch.testing.assert_close(frozen(x), bn(x), atol=1e-5, rtol=1e-5)
