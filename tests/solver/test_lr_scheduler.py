"""LR schedules: values at chosen iterations against hand-computed numbers."""

from __future__ import annotations

import logging

import pytest
import torch
from fvcore.common.param_scheduler import ConstantParamScheduler

from d2lite.config import get_cfg
from d2lite.solver import LRMultiplier, WarmupParamScheduler, build_lr_scheduler
from d2lite.solver.lr_scheduler import WarmupCosineLR, WarmupMultiStepLR


def _optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lrs(scheduler, optimizer, num_iters: int) -> list[float]:
    """Learning rate used at iterations 0 .. num_iters-1."""
    out = []
    for _ in range(num_iters):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.MAX_ITER = 100
    cfg.SOLVER.WARMUP_ITERS = 10
    cfg.SOLVER.WARMUP_FACTOR = 0.1
    for key, value in solver.items():
        cfg.SOLVER[key] = value
    return cfg


def test_multistep_linear_warmup_and_steps_beyond_max_iter(caplog):
    cfg = _cfg(STEPS=(50, 80, 200), GAMMA=0.1)
    opt = _optimizer()
    with caplog.at_level(logging.WARNING, logger="d2lite.solver.build"):
        sched = build_lr_scheduler(cfg, opt)
    assert "SOLVER.STEPS" in caplog.text and "ignored" in caplog.text
    lrs = _lrs(sched, opt, 100)
    # Linear warm-up from 0.1 * 0.1 to 0.1 over 10 iterations: 0.01 + 0.09 * it / 10.
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[5] == pytest.approx(0.055)
    assert lrs[9] == pytest.approx(0.091)
    assert lrs[10] == pytest.approx(0.1)
    assert lrs[49] == pytest.approx(0.1)
    assert lrs[50] == pytest.approx(0.01)
    assert lrs[79] == pytest.approx(0.01)
    assert lrs[80] == pytest.approx(0.001)
    assert lrs[99] == pytest.approx(0.001)


def test_constant_warmup():
    cfg = _cfg(STEPS=(50,), WARMUP_METHOD="constant")
    opt = _optimizer()
    lrs = _lrs(build_lr_scheduler(cfg, opt), opt, 12)
    assert lrs[:10] == pytest.approx([0.01] * 10)
    assert lrs[10:] == pytest.approx([0.1, 0.1])


def test_cosine_with_end_lr():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", BASE_LR_END=0.01)
    opt = _optimizer()
    lrs = _lrs(build_lr_scheduler(cfg, opt), opt, 100)
    # Multiplier = 0.1 + 0.45 * (1 + cos(pi * it / 100)); cos(0.1 pi) = 0.9510565163.
    assert lrs[10] == pytest.approx(0.1 * (0.1 + 0.45 * 1.9510565163))
    assert lrs[50] == pytest.approx(0.055)
    # Warm-up rises linearly from 0.01 to the cosine value at iteration 10.
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[5] == pytest.approx(0.5 * (0.01 + 0.1 * (0.1 + 0.45 * 1.9510565163)))
    assert lrs[99] > 0.01 and lrs[99] == pytest.approx(0.01, rel=1e-2)


def test_schedule_holds_last_value_after_max_iter():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupStepWithFixedGammaLR", NUM_DECAYS=1, GAMMA=0.5)
    opt = _optimizer()
    lrs = _lrs(build_lr_scheduler(cfg, opt), opt, 103)
    assert lrs[99:] == pytest.approx([0.05] * 4)


def test_cosine_end_lr_above_base_lr_is_rejected():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", BASE_LR_END=0.2)
    with pytest.raises(ValueError, match="BASE_LR_END"):
        build_lr_scheduler(cfg, _optimizer())


@pytest.mark.parametrize(
    "rescale, expected",
    [(False, {24: 1.0, 25: 0.5, 30: 0.5, 50: 0.25, 75: 0.125, 99: 0.125}),
     (True, {30: 1.0, 32: 1.0, 33: 0.5, 99: 0.125})],
)
def test_step_with_fixed_gamma(rescale, expected):
    cfg = _cfg(
        LR_SCHEDULER_NAME="WarmupStepWithFixedGammaLR",
        NUM_DECAYS=3,
        GAMMA=0.5,
        RESCALE_INTERVAL=rescale,
    )
    opt = _optimizer()
    lrs = _lrs(build_lr_scheduler(cfg, opt), opt, 100)
    # Without rescaling, 4 values over 100 iterations change every 25 iterations; with
    # rescaling they share the 90 iterations after warm-up (a change every 22.5).
    for it, multiplier in expected.items():
        assert lrs[it] == pytest.approx(0.1 * multiplier), it


def test_unknown_names_list_choices():
    with pytest.raises(ValueError, match="WarmupMultiStepLR.*WarmupCosineLR"):
        build_lr_scheduler(_cfg(LR_SCHEDULER_NAME="Poly"), _optimizer())
    with pytest.raises(ValueError, match="'exp'.*linear.*constant"):
        build_lr_scheduler(_cfg(WARMUP_METHOD="exp"), _optimizer())


def test_warmup_longer_than_training_is_clamped():
    cfg = _cfg(STEPS=(), WARMUP_ITERS=1000, MAX_ITER=10)
    opt = _optimizer()
    lrs = _lrs(build_lr_scheduler(cfg, opt), opt, 10)
    assert lrs[5] == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))


def test_lr_multiplier_state_dict_resumes():
    cfg = _cfg(STEPS=(50,))
    opt = _optimizer()
    sched = build_lr_scheduler(cfg, opt)
    _lrs(sched, opt, 60)
    state = sched.state_dict()
    assert state == {"base_lrs": [0.1], "last_epoch": 60}

    opt2 = _optimizer()
    sched2 = build_lr_scheduler(cfg, opt2)
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)
    assert sched2.last_epoch == 61


def test_lr_multiplier_requires_param_scheduler():
    with pytest.raises(ValueError, match="ParamScheduler"):
        LRMultiplier(_optimizer(), multiplier=lambda where: 1.0, max_iter=10)


def test_warmup_param_scheduler_direct():
    sched = WarmupParamScheduler(ConstantParamScheduler(2.0), 0.5, 0.5, "linear")
    assert sched(0.0) == pytest.approx(1.0)
    assert sched(0.25) == pytest.approx(1.5)
    assert sched(0.75) == pytest.approx(2.0)


def test_legacy_warmup_multistep():
    opt = _optimizer()
    sched = WarmupMultiStepLR(opt, [5], gamma=0.1, warmup_factor=0.1, warmup_iters=2)
    assert _lrs(sched, opt, 6) == pytest.approx([0.01, 0.055, 0.1, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="increasing"):
        WarmupMultiStepLR(_optimizer(), [5, 2])


def test_legacy_warmup_cosine():
    opt = _optimizer()
    sched = WarmupCosineLR(opt, max_iters=10, warmup_iters=0)
    lrs = _lrs(sched, opt, 6)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.05)
