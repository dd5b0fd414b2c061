from __future__ import annotations

import json
import logging
import math
import random

import numpy as np
import pytest
import torch
from engine_toys import ToyModel, make_checkpointer, random_batches, seeded_batches
from torch import nn

from d2lite.engine import SimpleTrainer, hooks
from d2lite.utils.events import CommonMetricPrinter, EventWriter, JSONWriter, get_event_storage


def _trainer(model=None, data=None):
    model = model or ToyModel()
    data = data if data is not None else random_batches()
    return SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1))


class _FakeCheckpointer:
    path_manager = None

    def __init__(self):
        self.saved: list[tuple[str, int]] = []

    def save(self, name, **kwargs):
        self.saved.append((name, kwargs["iteration"]))


def _scripted_eval(values):
    calls = iter(values)
    return lambda: {"bbox": {"AP": next(calls), "AP50": 1.0}}


def test_eval_hook_periods_and_flattened_results():
    calls = []

    def evaluate():
        calls.append(1)
        return {"bbox": {"AP": float(len(calls)), "AP-cls": 2}}

    trainer = _trainer()
    trainer.register_hooks([hooks.EvalHook(3, evaluate)])
    trainer.train(0, 7)
    # After iterations 2 and 5, then once after training (stored at iter == max_iter).
    assert [it for _, it in trainer.storage.history("bbox/AP").values()] == [2, 5, 7]
    assert [v for v, _ in trainer.storage.history("bbox/AP").values()] == [1.0, 2.0, 3.0]
    assert trainer.storage.latest()["bbox/AP-cls"] == (2.0, 7)


def test_eval_hook_period_zero_evaluates_once_at_end():
    calls = []
    trainer = _trainer()
    trainer.register_hooks([hooks.EvalHook(0, lambda: calls.append(1) or {})])
    trainer.train(0, 4)
    assert len(calls) == 1


def test_eval_hook_rejects_non_numbers_and_non_dicts():
    trainer = _trainer()
    trainer.register_hooks([hooks.EvalHook(0, lambda: {"bbox": {"AP": "high"}})])
    with pytest.raises(ValueError, match="bbox/AP: 'high'"):
        trainer.train(0, 1)
    trainer = _trainer()
    trainer.register_hooks([hooks.EvalHook(0, lambda: [0.5])])
    with pytest.raises(TypeError, match="must return a dict"):
        trainer.train(0, 1)


def test_flatten_results_dict():
    nested = {"a": {"b": {"c": 1}, "d": 2}, "e": 3}
    assert hooks.flatten_results_dict(nested) == {"a/b/c": 1, "a/d": 2, "e": 3}


def test_metrics_json_lines(tmp_path):
    path = tmp_path / "metrics.json"
    trainer = _trainer()
    trainer.register_hooks(
        [
            hooks.IterationTimer(warmup_iter=1),
            hooks.EvalHook(3, _scripted_eval([0.1, 0.2])),
            hooks.PeriodicWriter([JSONWriter(str(path))], period=2),
        ]
    )
    trainer.train(0, 5)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2, 3, 4, 5]
    assert {"total_loss", "loss_mse", "loss_l1", "data_time", "time"} <= set(lines[0])
    # Only the latest value of each scalar is written: the losses of iteration 2 were
    # superseded by iteration 3's before the next write, the evaluation was not.
    assert lines[1] == {"iteration": 2, "bbox/AP": 0.1, "bbox/AP50": 1.0}
    assert "bbox/AP" not in lines[2] and "total_loss" in lines[2]
    assert lines[4] == {"iteration": 5, "bbox/AP": 0.2, "bbox/AP50": 1.0}


def test_best_checkpointer_max_and_min():
    for mode, values, expected in [
        ("max", [1.0, 3.0, 2.0, 5.0], [("model_best", 1), ("model_best", 3), ("model_best", 7)]),
        ("min", [1.0, 3.0, 0.5, 5.0], [("model_best", 1), ("model_best", 5)]),
    ]:
        ckpt = _FakeCheckpointer()
        trainer = _trainer()
        trainer.register_hooks(
            [
                hooks.EvalHook(2, _scripted_eval(values)),
                hooks.BestCheckpointer(2, ckpt, "bbox/AP", mode=mode),
            ]
        )
        trainer.train(0, 7)
        assert ckpt.saved == expected, mode
    with pytest.raises(ValueError, match="'maximum'"):
        hooks.BestCheckpointer(2, ckpt, "bbox/AP", mode="maximum")


def test_best_checkpointer_state_survives_resume():
    hook = hooks.BestCheckpointer(2, _FakeCheckpointer(), "bbox/AP")
    hook.best_metric, hook.best_iter = 0.7, 9
    other = hooks.BestCheckpointer(2, _FakeCheckpointer(), "bbox/AP")
    other.load_state_dict(hook.state_dict())
    assert (other.best_metric, other.best_iter) == (0.7, 9)


def test_early_stopping_stops_and_writes_final_checkpoint():
    ckpt = _FakeCheckpointer()
    trainer = _trainer()
    stopper = hooks.EarlyStopping("bbox/AP", patience=2)
    trainer.register_hooks(
        [
            hooks.PeriodicCheckpointer(ckpt, 100),
            hooks.EvalHook(2, _scripted_eval([0.5, 0.6, 0.4, 0.6, 0.9])),
            stopper,
        ]
    )
    trainer.train(0, 20)
    # Evaluations after iterations 1, 3, 5, 7: best 0.6 at 3, no improvement at 5 and 7.
    assert trainer.iter == 8 and trainer.should_stop
    assert ckpt.saved == [("model_final", 7)]
    assert stopper.state_dict() == {"best": 0.6, "num_bad": 2}


def test_early_stopping_min_mode_and_bad_args():
    trainer = _trainer()
    trainer.register_hooks(
        [
            hooks.EvalHook(1, lambda: {"val": 1.0}),
            hooks.EarlyStopping("val", patience=3, mode="min"),
        ]
    )
    trainer.train(0, 20)
    assert trainer.iter == 4  # equal values are no improvement
    with pytest.raises(ValueError, match="patience"):
        hooks.EarlyStopping("val", patience=0)
    with pytest.raises(ValueError, match="mode"):
        hooks.EarlyStopping("val", patience=1, mode="up")


class _BNToy(ToyModel):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, batch):
        out = super().forward(torch.cat([self.bn(batch[:, :4]), batch[:, 4:]], dim=1))
        out["loss_rand"] = torch.rand(()) * 0  # consumes the RNG, as RPN/ROI sampling does
        return out


def test_validation_loss_values_and_no_side_effects():
    torch.manual_seed(0)
    model = _BNToy()
    val_batches = [torch.rand(4, 5), torch.rand(4, 5)]
    hook = hooks.ValidationLoss(model, val_batches, period=3)
    trainer = _trainer(model=model)
    trainer.register_hooks([hook])
    trainer.train(0, 3)
    latest = trainer.storage.latest()
    assert latest["val_total_loss"][1] == 2
    assert {"val_loss_mse", "val_loss_l1", "val_loss_rand"} <= set(latest)
    bn_state = {k: v.clone() for k, v in model.bn.state_dict().items()}
    rng_state = torch.get_rng_state()
    values = hook.compute()
    assert torch.equal(torch.get_rng_state(), rng_state)
    for k, v in model.bn.state_dict().items():
        assert torch.equal(v, bn_state[k]), k
    assert model.training and model.bn.training
    model.bn.eval()  # the hook uses the running statistics, as at test time
    with torch.no_grad():
        expected = sum(float(sum(model(b).values())) for b in val_batches) / 2
    assert values["val_total_loss"] == pytest.approx(expected, rel=1e-5)


def test_validation_loss_errors():
    with pytest.raises(ValueError, match="period"):
        hooks.ValidationLoss(ToyModel(), [], period=0)
    with pytest.raises(ValueError, match="no batch"):
        hooks.ValidationLoss(ToyModel(), [], period=1).compute()


def test_lr_scheduler_hook_puts_lr_and_steps():
    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    trainer = SimpleTrainer(model, random_batches(), opt)
    hook = hooks.LRScheduler(opt, sched)
    trainer.register_hooks([hook])
    trainer.train(0, 5)
    assert [v for v, _ in trainer.storage.history("lr").values()] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert hook.state_dict()["last_epoch"] == 5


def test_lr_scheduler_hook_takes_trainer_attributes():
    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = SimpleTrainer(model, random_batches(), opt)
    trainer.scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    trainer.register_hooks([hooks.LRScheduler()])
    trainer.train(0, 2)
    assert trainer.storage.history("lr").latest() == pytest.approx(0.05)


def test_iteration_timer_and_callback_hook(caplog):
    seen = []
    trainer = _trainer()
    trainer.register_hooks(
        [
            hooks.IterationTimer(warmup_iter=2),
            hooks.CallbackHook(
                before_train=lambda t: seen.append("bt"), after_step=lambda t: seen.append(t.iter)
            ),
        ]
    )
    with caplog.at_level(logging.INFO, logger="d2lite"):
        trainer.train(0, 5)
    assert [it for _, it in trainer.storage.history("time").values()] == [1, 2, 3, 4]
    assert seen == ["bt", 0, 1, 2, 3, 4]
    assert "Total training time" in caplog.text


def test_periodic_checkpointer_and_resume_at_next_iter(tmp_path):
    def build(max_iter_data_start):
        torch.manual_seed(0)
        model = ToyModel()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        trainer = SimpleTrainer(model, None, opt)
        return model, trainer

    model, trainer = build(0)
    ckpt = make_checkpointer(model, str(tmp_path / "a"), trainer=trainer)
    trainer.register_hooks([hooks.PeriodicCheckpointer(ckpt, 3)])
    trainer.data_loader = seeded_batches(0)
    trainer.train(0, 4)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["last_checkpoint", "model_0000002.pth", "model_final.pth"]

    resumed_model, resumed = build(0)
    ckpt = make_checkpointer(resumed_model, str(tmp_path / "a"), trainer=resumed)
    ckpt.resume_or_load("", resume=True)
    assert resumed.iter == 3
    resumed.data_loader = seeded_batches(resumed.iter + 1)
    resumed.train(resumed.iter + 1, 8)

    full_model, full = build(0)
    full.data_loader = seeded_batches(0)
    full.train(0, 8)
    for k, v in full_model.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k


def test_periodic_writer_rejects_non_writers():
    with pytest.raises(TypeError, match="EventWriter"):
        hooks.PeriodicWriter([object()])


def test_periodic_writer_calls_common_metric_printer(caplog):
    trainer = _trainer()
    trainer.register_hooks(
        [hooks.IterationTimer(warmup_iter=0), hooks.PeriodicWriter([CommonMetricPrinter(4)], 2)]
    )
    with caplog.at_level(logging.INFO, logger="d2lite"):
        trainer.train(0, 4)
    lines = [r.getMessage() for r in caplog.records if "iter:" in r.getMessage()]
    assert len(lines) == 2
    assert "eta: 0:00:00  iter: 1  " in lines[0] and "iter: 3" in lines[1]
    assert "total_loss: " in lines[0] and "loss_mse: " in lines[0] and "data_time: " in lines[0]


class _RecordingWriter(EventWriter):
    def __init__(self, period=None):
        self.period = period
        self.written: list[int] = []

    def write(self):
        self.written.append(get_event_storage().iter)


def test_periodic_writer_honours_a_writers_own_period():
    every, default = _RecordingWriter(period=1), _RecordingWriter()
    trainer = _trainer()
    trainer.register_hooks([hooks.PeriodicWriter([every, default], period=4)])
    trainer.train(0, 6)
    # Each also writes once more after training (iteration 6), before it is closed.
    assert every.written == [0, 1, 2, 3, 4, 5, 6]
    assert default.written == [3, 5, 6]


def test_precise_bn_recomputes_running_stats():
    torch.manual_seed(0)
    model = _BNToy()
    data = [torch.rand(16, 5) * 4 + 10 for _ in range(3)]
    trainer = _trainer(model=model)
    trainer.register_hooks([hooks.PreciseBN(0, model, data, num_iter=3)])
    trainer.train(0, 2)
    expected = torch.cat([d[:, :4] for d in data]).mean(0)
    torch.testing.assert_close(model.bn.running_mean, expected, rtol=1e-4, atol=1e-4)
    # Without BN layers the hook does nothing.
    assert hooks.PreciseBN(0, ToyModel(), data, 3)._disabled


def test_torch_profiler_writes_chrome_trace(tmp_path):
    trainer = _trainer()
    trainer.register_hooks(
        [hooks.TorchProfiler(lambda t: t.iter == 1, str(tmp_path), save_tensorboard=False)]
    )
    trainer.train(0, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["profiler-trace-iter1.json"]


def test_async_metrics_reach_storage_before_after_train():
    model = ToyModel()
    trainer = SimpleTrainer(
        model, random_batches(), torch.optim.SGD(model.parameters(), 0.1), async_write_metrics=True
    )
    seen = []
    trainer.register_hooks(
        [
            hooks.CallbackHook(
                after_train=lambda t: seen.append(len(t.storage.history("total_loss").values()))
            )
        ]
    )
    trainer.train(0, 4)
    assert seen == [4]


def test_lr_scheduler_hook_accepts_fvcore_param_scheduler():
    from fvcore.common.param_scheduler import MultiStepParamScheduler

    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    schedule = MultiStepParamScheduler([1.0, 0.1], milestones=[2], num_updates=4)
    trainer = SimpleTrainer(model, random_batches(), opt)
    trainer.register_hooks([hooks.LRScheduler(opt, schedule)])
    trainer.train(0, 4)
    lrs = [v for v, _ in trainer.storage.history("lr").values()]
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1])


def test_lr_scheduler_reports_the_group_detectron2_reports():
    big, small = nn.Parameter(torch.zeros(1000)), [nn.Parameter(torch.zeros(1)) for _ in range(3)]
    # The group with the most parameters wins, however few elements they hold.
    opt = torch.optim.SGD([{"params": [big], "lr": 1.0}, {"params": small, "lr": 0.5}], lr=1.0)
    assert hooks.LRScheduler.get_best_param_group_id(opt) == 1
    # One parameter per group: the first group with the most common LR.
    singles = [{"params": [p], "lr": lr} for p, lr in zip([big, *small], [1.0, 0.5, 0.2, 0.5])]
    opt = torch.optim.SGD(singles, lr=1.0)
    assert hooks.LRScheduler.get_best_param_group_id(opt) == 1


def test_best_checkpointer_skips_non_finite_scores_and_logs(caplog):
    ckpt = _FakeCheckpointer()
    trainer = _trainer()
    scores = [math.nan, 0.5, math.inf, 0.4, 0.7]
    trainer.register_hooks(
        [
            hooks.EvalHook(2, _scripted_eval(scores)),
            hooks.BestCheckpointer(2, ckpt, "bbox/AP", mode="max"),
        ]
    )
    with caplog.at_level(logging.INFO, logger="d2lite"):
        trainer.train(0, 9)
    # NaN gives no baseline, inf is never an improvement, 0.7 after training is.
    assert ckpt.saved == [("model_best", 3), ("model_best", 9)]
    assert "Saved first model at 0.50000 @ 3 steps" in caplog.text
    assert "Not saving as latest eval score for bbox/AP is 0.40000" in caplog.text
    assert "better than last best score 0.50000 @ iteration 3" in caplog.text


def test_autograd_profiler_writes_chrome_trace(tmp_path):
    trainer = _trainer()
    with pytest.warns(UserWarning, match="deprecated"):
        profiler = hooks.AutogradProfiler(lambda t: t.iter == 1, str(tmp_path))
    trainer.register_hooks([profiler])
    trainer.train(0, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["profiler-trace-iter1.json"]


def test_torch_memory_stats_is_silent_without_cuda(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    trainer = _trainer()
    trainer.register_hooks([hooks.TorchMemoryStats(period=1)])
    with caplog.at_level(logging.INFO, logger="d2lite"):
        trainer.train(0, 3)
    assert "allocated_mem" not in caplog.text


def test_torch_memory_stats_logs_max_runs_reports_then_the_summary(monkeypatch, caplog):
    resets = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("max_memory_reserved", "memory_reserved", "memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, lambda: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 5 * 2**20)
    monkeypatch.setattr(torch.cuda, "memory_summary", lambda: "SUMMARY TABLE")
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: resets.append(1))
    trainer = _trainer()
    trainer.register_hooks([hooks.TorchMemoryStats(period=2, max_runs=2)])
    with caplog.at_level(logging.INFO, logger="d2lite"):
        trainer.train(0, 8)
    reports = [r.getMessage() for r in caplog.records if "allocated_mem" in r.getMessage()]
    assert [line.split()[1] for line in reports] == ["1", "3"]  # then max_runs is reached
    assert "max_allocated_mem: 5MB" in reports[0] and "reserved_mem: 3MB" in reports[0]
    assert caplog.text.count("SUMMARY TABLE") == 1 and len(resets) == 2


def test_detectron2_names_import_from_hooks_and_engine():
    from d2lite import engine
    from d2lite.engine.hooks import EventStorage, LRMultiplier  # noqa: F401  (scripts do this)
    from d2lite.solver import LRMultiplier as SolverLRMultiplier

    assert LRMultiplier is SolverLRMultiplier
    for name in ("AutogradProfiler", "TorchMemoryStats", "TorchProfiler"):
        assert getattr(engine, name) is getattr(hooks, name) and name in hooks.__all__


def test_evaluation_leaves_the_training_random_streams_alone():
    def run(eval_function):
        torch.manual_seed(0)
        trainer = _trainer(data=seeded_batches(0))
        noise = hooks.CallbackHook(
            after_step=lambda t: t.storage.put_scalar("noise", torch.rand(()))
        )
        trainer.register_hooks([hooks.EvalHook(2, eval_function), noise])
        trainer.train(0, 6)
        return [v for v, _ in trainer.storage.history("noise").values()]

    def draws_like_a_test_loader():
        # A DataLoader draws its base seed from torch's RNG when iterated; numpy too here.
        torch.rand(()), np.random.rand(), random.random()
        return {"bbox": {"AP": 1.0}}

    assert run(draws_like_a_test_loader) == run(lambda: {})


def _bn_batches():
    from d2lite.data import DatasetFromList, build_batch_data_loader
    from d2lite.data.samplers import TrainingSampler

    rows = list(torch.rand(9, 5, generator=torch.Generator().manual_seed(0)) * 4 + 10)
    sampler = TrainingSampler(9, seed=1)
    return build_batch_data_loader(DatasetFromList(rows), sampler, 4, collate_fn=torch.stack)


def test_precise_bn_resumes_its_data_loader():
    torch.manual_seed(0)
    model = _BNToy()
    hook = hooks.PreciseBN(0, model, _bn_batches(), num_iter=2)
    hook.update_stats()
    state = hook.state_dict()
    assert state["data_loader"]["start"] == 8
    hook.update_stats()
    expected = model.bn.running_mean.clone()

    resumed = hooks.PreciseBN(0, model, _bn_batches(), num_iter=2)
    resumed.load_state_dict(state)
    resumed.update_stats()
    assert torch.equal(model.bn.running_mean, expected)


class _CountingCheckpointer(_FakeCheckpointer):
    def get_checkpoint_file(self):
        return ""


def test_every_periodic_hook_follows_one_schedule_rule(monkeypatch):
    """Period 3 over 8 iterations: after iterations 2, 5 and the last one, 7; EvalHook and
    BestCheckpointer leave the last one to after_train (recorded at iteration 8)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("max_memory_reserved", "memory_reserved", "memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, lambda: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 0)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: None)
    model = _BNToy()
    writer, ckpt, best = _RecordingWriter(), _CountingCheckpointer(), _FakeCheckpointer()
    precise_bn = hooks.PreciseBN(3, model, [torch.rand(4, 5)] * 30, num_iter=1)
    bn_updates = []
    monkeypatch.setattr(precise_bn, "update_stats", lambda: bn_updates.append(trainer.iter))
    evaluations = []

    def evaluate():
        evaluations.append(trainer.storage.iter)
        return {"bbox": {"AP": float(len(evaluations))}}

    trainer = _trainer(model=model)
    trainer.register_hooks(
        [
            precise_bn,
            hooks.PeriodicCheckpointer(ckpt, 3),
            hooks.ValidationLoss(model, [torch.rand(4, 5)], period=3),
            hooks.EvalHook(3, evaluate),
            hooks.BestCheckpointer(3, best, "bbox/AP"),
            hooks.TorchMemoryStats(period=3),
            hooks.PeriodicWriter([writer], period=3),
        ]
    )
    trainer.train(0, 8)
    assert bn_updates == [2, 5, 7]
    assert ckpt.saved == [("model_0000002", 2), ("model_0000005", 5), ("model_final", 7)]
    val = [it for _, it in trainer.storage.history("val_total_loss").values()]
    assert val == [2, 5, 7]
    assert writer.written == [2, 5, 7, 8]  # and once more before closing
    assert evaluations == [2, 5, 8]
    assert best.saved == [("model_best", 2), ("model_best", 5), ("model_best", 8)]


class _NaNAtIter(nn.Module):
    def __init__(self, it):
        super().__init__()
        self.toy, self.it = ToyModel(), it

    def forward(self, batch):
        out = self.toy(batch)
        if get_event_storage().iter == self.it:
            out["loss_mse"] = out["loss_mse"] * float("nan")
        return out


def test_nothing_is_evaluated_or_saved_as_best_after_a_failed_last_iteration():
    evaluations, ckpt, best = [], _FakeCheckpointer(), _FakeCheckpointer()
    trainer = _trainer(model=_NaNAtIter(3))
    trainer.register_hooks(
        [
            hooks.PeriodicCheckpointer(ckpt, 2),
            hooks.EvalHook(2, lambda: evaluations.append(1) or {"bbox": {"AP": 1.0}}),
            hooks.BestCheckpointer(2, best, "bbox/AP"),
        ]
    )
    with pytest.raises(FloatingPointError, match="iteration 3"):
        trainer.train(0, 4)
    assert trainer.outcome == "failed"
    # The evaluation after iteration 1 ran; none after the NaN at the last one, 3.
    assert evaluations == [1] and best.saved == [("model_best", 1)]
    assert ckpt.saved == [("model_0000001", 1)]  # no model_final either


def test_a_stopped_run_is_not_evaluated_after_training():
    evaluations, ckpt = [], _FakeCheckpointer()
    trainer = _trainer()
    trainer.register_hooks(
        [
            hooks.PeriodicCheckpointer(ckpt, 100),
            hooks.EvalHook(0, lambda: evaluations.append(1) or {}),
            hooks.CallbackHook(after_step=lambda t: t.iter == 2 and t.stop()),
        ]
    )
    trainer.train(0, 4)  # stopped after iteration 2, one before the last
    assert trainer.outcome == "stopped" and evaluations == []
    assert ckpt.saved == [("model_final", 2)]


def test_early_stopping_and_best_checkpointer_share_what_a_new_best_is():
    # NaN and infinite values are never a new best, for either hook.
    trainer = _trainer()
    stopper = hooks.EarlyStopping("bbox/AP", patience=10)
    best = _FakeCheckpointer()
    trainer.register_hooks(
        [
            hooks.EvalHook(1, _scripted_eval([math.nan, math.inf, 0.5, 0.4, 0.6])),
            hooks.BestCheckpointer(1, best, "bbox/AP"),
            stopper,
        ]
    )
    trainer.train(0, 5)
    assert best.saved == [("model_best", 2), ("model_best", 5)]
    # nan and inf count as evaluations without improvement; 0.5 resets; 0.4 does not improve
    # (the 0.6 came after training, which EarlyStopping does not look at).
    assert stopper.best == 0.5 and stopper.num_bad == 1
    with pytest.raises(ValueError, match="EarlyStopping mode must be 'max' or 'min'"):
        hooks.EarlyStopping("bbox/AP", patience=1, mode="maximum")
