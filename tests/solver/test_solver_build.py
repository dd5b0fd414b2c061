"""build_optimizer: param groups, optimizer choice and gradient clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2lite.config import get_cfg
from d2lite.solver import (
    build_optimizer,
    get_default_optimizer_params,
    maybe_add_gradient_clipping,
    reduce_param_groups,
)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.fc = nn.Linear(4, 2)
        # The same module under two names: its parameters must appear once.
        self.fc_alias = self.fc


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.WEIGHT_DECAY = 1e-4
    for key, value in solver.items():
        cfg.SOLVER[key] = value
    return cfg


def _group_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict:
    matches = [g for g in optimizer.param_groups if any(p is param for p in g["params"])]
    assert len(matches) == 1
    return matches[0]


def test_sgd_param_groups_norm_bias_frozen_shared():
    net = _Net()
    cfg = _cfg(WEIGHT_DECAY_NORM=0.0, BIAS_LR_FACTOR=2.0, WEIGHT_DECAY_BIAS=0.0, MOMENTUM=0.8)
    opt = build_optimizer(cfg, net)
    assert type(opt) is torch.optim.SGD
    all_params = [p for g in opt.param_groups for p in g["params"]]
    assert len(all_params) == 6  # conv, bn and fc weight+bias; frozen left out; alias once
    assert not any(p is net.frozen.weight or p is net.frozen.bias for p in all_params)
    assert len(opt.param_groups) == 3  # merged by identical hyper-parameters

    conv_w = _group_of(opt, net.conv.weight)
    assert (conv_w["lr"], conv_w["weight_decay"], conv_w["momentum"]) == (0.1, 1e-4, 0.8)
    assert _group_of(opt, net.fc.weight) is conv_w
    bn_w = _group_of(opt, net.bn.weight)
    assert (bn_w["lr"], bn_w["weight_decay"]) == (0.1, 0.0)
    for bias in (net.conv.bias, net.bn.bias, net.fc.bias):
        group = _group_of(opt, bias)
        assert (group["lr"], group["weight_decay"]) == pytest.approx((0.2, 0.0))


def test_bias_weight_decay_defaults_to_weight_decay():
    net = _Net()
    opt = build_optimizer(_cfg(WEIGHT_DECAY_NORM=0.0), net)
    assert _group_of(opt, net.conv.bias)["weight_decay"] == 1e-4
    assert _group_of(opt, net.bn.bias)["weight_decay"] == 0.0
    assert len(opt.param_groups) == 2


def test_adamw():
    net = _Net()
    opt = build_optimizer(_cfg(OPTIMIZER="AdamW", BASE_LR=1e-3, WEIGHT_DECAY=0.05), net)
    assert type(opt) is torch.optim.AdamW
    assert opt.defaults["betas"] == (0.9, 0.999)
    assert _group_of(opt, net.conv.weight)["weight_decay"] == 0.05
    assert _group_of(opt, net.conv.weight)["lr"] == 1e-3


def test_unknown_optimizer_lists_choices():
    with pytest.raises(ValueError, match=r"SOLVER.OPTIMIZER 'Adam'.*SGD.*AdamW"):
        build_optimizer(_cfg(OPTIMIZER="Adam"), _Net())


def test_model_without_trainable_params():
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(_cfg(), nn.Linear(2, 2).requires_grad_(False))


def test_get_default_optimizer_params_overrides_and_errors():
    net = nn.Sequential(nn.Linear(2, 2))
    groups = get_default_optimizer_params(
        net, base_lr=1.0, weight_decay=0.5, overrides={"bias": {"weight_decay": 0.0}},
        lr_factor_func=lambda name: 0.5 if name == "0.weight" else 1.0,
    )
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(0.5, 0.5), (1.0, 0.0)]
    with pytest.raises(ValueError, match="bias_lr_factor requires base_lr"):
        get_default_optimizer_params(net, bias_lr_factor=2.0)
    with pytest.raises(ValueError, match="Conflicting overrides for 'bias'"):
        get_default_optimizer_params(
            net, base_lr=1.0, bias_lr_factor=2.0, overrides={"bias": {"lr": 3.0}}
        )


def test_reduce_param_groups_merges_and_dedups():
    a, b, c = (nn.Parameter(torch.zeros(1)) for _ in range(3))
    groups = reduce_param_groups(
        [{"params": [a, b], "lr": 1.0}, {"params": [c], "lr": 1.0}, {"params": [b], "lr": 2.0}]
    )
    assert [(g["lr"], len(g["params"])) for g in groups] == [(1.0, 2), (2.0, 1)]
    assert groups[0]["params"][0] is a and groups[0]["params"][1] is c
    with pytest.raises(ValueError, match="without 'params'"):
        reduce_param_groups([{"lr": 1.0}])


def _clip_cfg(clip_type: str, value: float = 1.0):
    cfg = _cfg(BASE_LR=1.0, MOMENTUM=0.0, WEIGHT_DECAY=0.0, WEIGHT_DECAY_NORM=0.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = clip_type
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = value
    return cfg


class _TwoParams(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(2))
        self.b = nn.Parameter(torch.zeros(2))

    def set_grads(self) -> None:
        self.a.grad = torch.tensor([3.0, 4.0])
        self.b.grad = torch.tensor([0.3, -0.4])


def test_clip_value():
    net = _TwoParams()
    opt = build_optimizer(_clip_cfg("value", 0.35), net)
    assert type(opt).__name__ == "SGDWithGradientClip" and isinstance(opt, torch.optim.SGD)
    net.set_grads()
    opt.step()
    assert net.a.grad.tolist() == pytest.approx([0.35, 0.35])
    assert net.b.grad.tolist() == pytest.approx([0.3, -0.35])
    # The update used the clipped gradients (lr 1, plain SGD).
    assert net.a.detach().tolist() == pytest.approx([-0.35, -0.35])


def test_clip_norm_per_parameter():
    net = _TwoParams()
    opt = build_optimizer(_clip_cfg("norm", 1.0), net)
    net.set_grads()
    opt.step()
    assert net.a.grad.tolist() == pytest.approx([0.6, 0.8], abs=1e-5)
    assert net.b.grad.tolist() == pytest.approx([0.3, -0.4])


def test_clip_full_model_norm():
    net = _TwoParams()
    opt = build_optimizer(_clip_cfg("full_model", 1.0), net)
    net.set_grads()
    opt.step()
    scale = 1.0 / (25.25**0.5)
    assert net.a.grad.tolist() == pytest.approx([3.0 * scale, 4.0 * scale], abs=1e-5)
    assert net.b.grad.tolist() == pytest.approx([0.3 * scale, -0.4 * scale], abs=1e-5)
    total = torch.cat([net.a.grad, net.b.grad]).norm()
    assert total.item() == pytest.approx(1.0, abs=1e-5)


def test_clipping_on_an_instance_and_disabled():
    net = _TwoParams()
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    assert maybe_add_gradient_clipping(_cfg(), opt) is opt
    assert type(opt) is torch.optim.SGD
    same = maybe_add_gradient_clipping(_clip_cfg("value", 0.5), opt)
    assert same is opt and type(opt).__name__ == "SGDWithGradientClip"
    net.set_grads()
    opt.step()
    assert net.a.grad.tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(TypeError, match="Optimizer"):
        maybe_add_gradient_clipping(_clip_cfg("value"), nn.Linear)


def test_clipped_optimizer_state_dict_round_trips():
    net = _TwoParams()
    cfg = _clip_cfg("norm")
    cfg.SOLVER.MOMENTUM = 0.9
    opt = build_optimizer(cfg, net)
    net.set_grads()
    opt.step()
    opt2 = build_optimizer(cfg, _TwoParams())
    opt2.load_state_dict(opt.state_dict())
    buf = opt2.state_dict()["state"][0]["momentum_buffer"]
    assert buf.tolist() == pytest.approx([0.6, 0.8], abs=1e-5)


def test_unknown_clip_type_lists_choices():
    with pytest.raises(ValueError, match="CLIP_TYPE 'l1'.*value.*norm.*full_model"):
        build_optimizer(_clip_cfg("l1"), _TwoParams())


def test_expand_param_groups_one_group_per_param_later_values_win():
    from d2lite.solver.build import _expand_param_groups

    groups = [
        {"params": ["w", "b"], "lr": 1.0, "weight_decay": 0.1},
        {"params": ["b", "c"], "lr": 2.0},
        {"params": ["w"], "momentum": 0.5},
    ]
    assert _expand_param_groups(groups) == [
        {"params": ["w"], "lr": 1.0, "weight_decay": 0.1, "momentum": 0.5},
        {"params": ["b"], "lr": 2.0, "weight_decay": 0.1},
        {"params": ["c"], "lr": 2.0},
    ]


def test_reduce_param_groups_keeps_param_names_aligned():
    groups = reduce_param_groups(
        [
            {"params": ["p", "q"], "param_names": ["a.p", "a.q"], "lr": 1.0},
            {"params": ["r"], "param_names": ["b.r"], "lr": 2.0},
            {"params": ["s"], "param_names": ["b.s"], "lr": 1.0},
        ]
    )
    assert groups == [
        {"lr": 1.0, "params": ["p", "q", "s"], "param_names": ["a.p", "a.q", "b.s"]},
        {"lr": 2.0, "params": ["r"], "param_names": ["b.r"]},
    ]


def test_sgd_uses_multi_tensor_updates():
    opt = build_optimizer(_cfg(), _Net())
    assert opt.defaults["foreach"] is True
