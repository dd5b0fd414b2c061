from __future__ import annotations

import pytest
import torch
from torch import nn

import d2lite.layers.batch_norm as batch_norm_module
from d2lite.layers import CycleBatchNormList, FrozenBatchNorm2d, NaiveSyncBatchNorm, get_norm
from d2lite.layers.batch_norm import LayerNorm


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
     ("SyncBN", nn.SyncBatchNorm), ("nnSyncBN", nn.SyncBatchNorm),
     ("naiveSyncBN", NaiveSyncBatchNorm), ("naiveSyncBN_N", NaiveSyncBatchNorm),
     ("LN", LayerNorm)],
)
def test_get_norm_names(name, cls):
    norm = get_norm(name, 64)
    assert isinstance(norm, cls)
    if name == "GN":
        assert norm.num_groups == 32
    if cls is NaiveSyncBatchNorm:
        assert norm._stats_mode == ("N" if name.endswith("_N") else "")
    if name == "LN":
        assert norm.weight.shape == (64,)


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


def test_frozen_bn_converted_from_bn_keeps_the_batch_counter_and_converts_back():
    bn = nn.BatchNorm2d(3)
    bn.train()(torch.randn(4, 3, 2, 2))
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
    frozen = FrozenBatchNorm2d.convert_frozen_batchnorm(bn)
    # Same state dict keys as Detectron2's converted layer.
    assert set(frozen.state_dict()) == set(bn.state_dict())
    assert frozen.num_batches_tracked.item() == 1

    model = nn.Sequential(nn.Conv2d(3, 3, 1), frozen)
    back = FrozenBatchNorm2d.convert_frozenbatchnorm2d_to_batchnorm2d(model)
    assert back is model and type(model[1]) is nn.BatchNorm2d
    assert model[1].weight.requires_grad and model[1].num_batches_tracked.item() == 1
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(model[1].eval()(x), frozen(x), atol=1e-5, rtol=1e-5)
    fresh = FrozenBatchNorm2d.convert_frozenbatchnorm2d_to_batchnorm2d(FrozenBatchNorm2d(2))
    assert type(fresh) is nn.BatchNorm2d and fresh.num_batches_tracked.item() == 0


def test_naive_sync_bn_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    naive, bn = NaiveSyncBatchNorm(4), nn.BatchNorm2d(4)
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(naive(x), bn(x))
    torch.testing.assert_close(naive.running_var, bn.running_var)
    with pytest.raises(ValueError, match="stats_mode"):
        NaiveSyncBatchNorm(4, stats_mode="HW")


def _two_identical_processes(monkeypatch):
    """As if a second process held the same batch: all_reduce doubles every value."""
    monkeypatch.setattr(batch_norm_module.comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(batch_norm_module.dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(batch_norm_module.dist, "all_reduce", lambda t, *a, **k: t.mul_(2))


@pytest.mark.parametrize("stats_mode", ["", "N"])
def test_naive_sync_bn_uses_the_global_statistics(monkeypatch, stats_mode):
    _two_identical_processes(monkeypatch)
    naive = NaiveSyncBatchNorm(4, stats_mode=stats_mode)
    x = torch.randn(3, 4, 5, 5, requires_grad=True)
    out = naive(x)
    # Two equal halves: the global statistics are the local ones.
    mean = x.detach().mean(dim=(0, 2, 3))
    var = x.detach().var(dim=(0, 2, 3), unbiased=False)
    expected = (x.detach() - mean.view(1, -1, 1, 1)) / (var.view(1, -1, 1, 1) + 1e-5).sqrt()
    torch.testing.assert_close(out.detach(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(naive.running_mean, 0.1 * mean)
    torch.testing.assert_close(naive.running_var, 0.9 + 0.1 * var)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_naive_sync_bn_n_mode_accepts_an_empty_batch(monkeypatch):
    _two_identical_processes(monkeypatch)
    naive = NaiveSyncBatchNorm(2, stats_mode="N")
    x = torch.zeros(0, 2, 3, 3, requires_grad=True)
    out = naive(x)
    assert out.shape == (0, 2, 3, 3)
    out.sum().backward()
    # No images in any process: the running statistics stay where they were.
    assert naive.running_mean.tolist() == [0.0, 0.0] and naive.running_var.tolist() == [1.0, 1.0]
    with pytest.raises(AssertionError, match="empty batches"):
        NaiveSyncBatchNorm(2)(torch.zeros(0, 2, 3, 3))


def test_cycle_batch_norm_list_keeps_statistics_per_domain():
    cycle = CycleBatchNormList(2, num_features=3)
    assert [m.affine for m in cycle] == [False, False] and cycle.weight.shape == (3,)
    a, b = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2) + 5.0
    cycle(a), cycle(b), cycle(a)
    assert cycle[0].num_batches_tracked.item() == 2 and cycle[1].num_batches_tracked.item() == 1
    assert (cycle[1].running_mean > cycle[0].running_mean).all()
    with torch.no_grad():
        cycle.weight.fill_(2.0)
        cycle.bias.fill_(1.0)
    cycle.eval()
    out = cycle(a)  # the second layer's turn
    torch.testing.assert_close(out, cycle[1](a) * 2.0 + 1.0)
    plain = CycleBatchNormList(3, affine=False, num_features=2)
    assert not hasattr(plain, "weight") and "affine=False" in repr(plain)


def test_layer_norm_normalizes_over_channels():
    ln = LayerNorm(5)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2)
        ln.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 3, 4)
    expected = torch.nn.functional.layer_norm(
        x.permute(0, 2, 3, 1), (5,), ln.weight, ln.bias, eps=1e-6
    ).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), expected, atol=1e-5, rtol=1e-5)
