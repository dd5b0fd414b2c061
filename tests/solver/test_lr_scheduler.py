"""LR schedules: values at chosen iterations against hand-computed numbers."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from fvcore.common.param_scheduler import ConstantParamScheduler, StepWithFixedGammaParamScheduler

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


def _lrs_after_steps(scheduler, optimizer, num_steps: int) -> list[float]:
    """The LR before any step, then after each of ``num_steps`` steps (the trainer's count)."""
    out = [optimizer.param_groups[0]["lr"]]
    for _ in range(num_steps):
        optimizer.step()
        scheduler.step()
        out.append(optimizer.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("end_lr", [0.0, 0.02])
def test_cosine_reaches_base_lr_end_after_the_last_step(end_lr):
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", BASE_LR_END=end_lr, MAX_ITER=20,
               WARMUP_ITERS=4)
    opt = _optimizer()
    lrs = _lrs_after_steps(build_lr_scheduler(cfg, opt), opt, 20)
    assert lrs[0] == pytest.approx(0.1 * 0.1)
    # After warm-up: end + (base - end) * (1 + cos(pi * it / 20)) / 2, up to it == MAX_ITER.
    for it in range(4, 21):
        expected = end_lr + (0.1 - end_lr) * 0.5 * (1 + math.cos(math.pi * it / 20))
        assert lrs[it] == pytest.approx(expected), it
    assert lrs[20] == pytest.approx(end_lr)


def test_rescaled_warmup_rises_to_the_schedule_start():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", BASE_LR=1.0, BASE_LR_END=0.2, MAX_ITER=10,
               WARMUP_ITERS=3, RESCALE_INTERVAL=True)
    opt = _optimizer(lr=1.0)
    lrs = _lrs_after_steps(build_lr_scheduler(cfg, opt), opt, 10)
    # Linear from 0.1 to cosine(0) = 1.0 over 3 iterations, then the cosine over the other 7.
    assert lrs[:4] == pytest.approx([0.1, 0.4, 0.7, 1.0])
    for it in range(3, 11):
        assert lrs[it] == pytest.approx(0.2 + 0.4 * (1 + math.cos(math.pi * (it - 3) / 7))), it


def test_fixed_gamma_last_step_holds_where_fvcore_raises():
    raw = WarmupParamScheduler(
        StepWithFixedGammaParamScheduler(base_value=1.0, gamma=0.1, num_decays=2, num_updates=9),
        0.5, 0.0,
    )
    opt = _optimizer(lr=1.0)
    sched = LRMultiplier(opt, raw, max_iter=9)
    lrs = _lrs_after_steps(sched, opt, 8)
    assert lrs == pytest.approx([1.0] * 3 + [0.1] * 3 + [0.01] * 3)
    with pytest.raises(IndexError):  # fvcore's own schedule has no value at where == 1
        sched.step()

    cfg = _cfg(LR_SCHEDULER_NAME="WarmupStepWithFixedGammaLR", BASE_LR=1.0, MAX_ITER=9,
               WARMUP_ITERS=0, NUM_DECAYS=2, GAMMA=0.1)
    opt = _optimizer(lr=1.0)
    built = build_lr_scheduler(cfg, opt)
    assert isinstance(built._multiplier._schedulers[1], StepWithFixedGammaParamScheduler)
    assert _lrs_after_steps(built, opt, 9) == pytest.approx(lrs + [0.01])


def test_lr_scheduler_is_torchs_base_class():
    from torch.optim.lr_scheduler import LRScheduler as TorchLRScheduler

    from d2lite.solver import LRScheduler

    assert LRScheduler is TorchLRScheduler
    assert isinstance(build_lr_scheduler(_cfg(), _optimizer()), LRScheduler)


def test_step_equal_to_max_iter_is_an_error_naming_the_keys():
    # Detectron2 keeps a step == MAX_ITER and fvcore then raises ValueError("Milestone must be
    # smaller than total number of updates"), naming no config key.
    with pytest.raises(ValueError, match=r"SOLVER\.STEPS.*100.*SOLVER\.MAX_ITER \(100\)"):
        build_lr_scheduler(_cfg(STEPS=(50, 100)), _optimizer())


def test_steps_beyond_max_iter_warning_names_the_values(caplog):
    with caplog.at_level(logging.WARNING, logger="d2lite.solver.build"):
        build_lr_scheduler(_cfg(STEPS=(50, 150, 200)), _optimizer())
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "SOLVER.STEPS" in message and "(150, 200)" in message
    assert "SOLVER.MAX_ITER (100)" in message


@pytest.mark.parametrize("steps", [(0, 50), (60, 50), (50, 50)])
def test_steps_not_increasing_from_one_name_the_key(steps):
    # fvcore raises for these too ("Milestone must be smaller than start epoch").
    with pytest.raises(ValueError, match=r"SOLVER\.STEPS"):
        build_lr_scheduler(_cfg(STEPS=steps), _optimizer())
