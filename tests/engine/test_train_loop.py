from __future__ import annotations

import copy
import io
import math
import random
import time

import numpy as np
import pytest
import torch
from engine_toys import ToyModel, random_batches, seeded_batches

from d2lite.engine import AMPTrainer, HookBase, SimpleTrainer, TrainerBase, hooks
from d2lite.utils.events import EventStorage, get_event_storage


def _trainer(model=None, data=None, lr=0.1):
    model = model or ToyModel()
    data = data if data is not None else random_batches()
    return SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=lr))


class _Recorder(HookBase):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def before_train(self):
        self.log.append((self.name, "before_train", self.trainer.iter))

    def after_train(self):
        self.log.append((self.name, "after_train", self.trainer.iter))

    def before_step(self):
        self.log.append((self.name, "before_step", self.trainer.iter))

    def after_backward(self):
        self.log.append((self.name, "after_backward", self.trainer.iter))

    def after_step(self):
        self.log.append((self.name, "after_step", self.trainer.iter))


def test_hook_call_order_and_final_iter():
    log: list = []
    trainer = _trainer()
    trainer.register_hooks([_Recorder("a", log), None, _Recorder("b", log)])
    trainer.train(3, 5)
    step = ["before_step", "after_backward", "after_step"]
    expected = [("a", "before_train", 3), ("b", "before_train", 3)]
    for it in (3, 4):
        for stage in step:
            expected += [("a", stage, it), ("b", stage, it)]
    expected += [("a", "after_train", 5), ("b", "after_train", 5)]
    assert log == expected
    # As in Detectron2, iter == max_iter after a finished loop.
    assert trainer.iter == 5 and trainer.start_iter == 3 and trainer.max_iter == 5


def test_register_hooks_rejects_non_hooks_and_sets_weak_trainer():
    trainer = _trainer()
    with pytest.raises(TypeError, match="HookBase"):
        trainer.register_hooks([object()])
    hook = HookBase()
    trainer.register_hooks([hook])
    assert hook.trainer.iter == 0
    assert hook.trainer is not trainer  # a weakref proxy, not the trainer itself


def test_losses_and_data_time_in_storage():
    trainer = _trainer()
    seen = {}

    def grab(t):
        seen.update({k: v for k, (v, _) in t.storage.latest().items()})

    trainer.register_hooks([hooks.CallbackHook(after_step=grab)])
    trainer.train(0, 2)
    assert set(seen) == {"total_loss", "loss_mse", "loss_l1", "data_time", "rank_data_time"}
    assert seen["total_loss"] == pytest.approx(seen["loss_mse"] + seen["loss_l1"])
    assert trainer.storage.history("total_loss").values()[-1][1] == 1


def test_training_reduces_loss():
    torch.manual_seed(0)
    x = torch.rand(8, 4)
    batch = torch.cat([x, x @ torch.tensor([[1.0], [2.0], [-1.0], [3.0]])], dim=1)
    trainer = _trainer(data=iter(lambda: batch, None), lr=0.3)
    trainer.train(0, 30)
    losses = [v for v, _ in trainer.storage.history("total_loss").values()]
    assert losses[-1] < 0.2 * losses[0]


class _NaNModel(ToyModel):
    def forward(self, batch):
        out = super().forward(batch)
        if get_event_storage().iter == 5:
            out["loss_mse"] = out["loss_mse"] * float("nan")
        return out


def test_nan_loss_raises_floating_point_error_naming_iteration():
    log: list = []
    trainer = _trainer(model=_NaNModel())
    trainer.register_hooks([_Recorder("a", log)])
    with pytest.raises(FloatingPointError, match=r"iteration=5!\nloss_dict = .*'loss_mse': nan"):
        trainer.train(0, 10)
    # after_train still runs on failure, with iter left at the failing iteration.
    assert log[-1] == ("a", "after_train", 5)


def test_model_output_type_errors():
    class BadModel(ToyModel):
        def forward(self, batch):
            return {"loss": super().forward(batch)["loss_mse"], "acc": 0.5}

    with pytest.raises(TypeError, match="Loss 'acc'.*float"):
        _trainer(model=BadModel()).train(0, 1)


def test_tensor_output_is_total_loss():
    class TensorModel(ToyModel):
        def forward(self, batch):
            return super().forward(batch)["loss_mse"]

    trainer = _trainer(model=TensorModel())
    trainer.train(0, 1)
    assert "total_loss" in trainer.storage.latest()


def test_gather_metric_period():
    trainer = SimpleTrainer(
        ToyModel(),
        random_batches(),
        torch.optim.SGD(ToyModel().parameters(), 0.1),
        gather_metric_period=2,
    )
    trainer.train(0, 4)
    assert [it for _, it in trainer.storage.history("total_loss").values()] == [1, 3]


def test_stop_ends_loop_cleanly():
    log: list = []

    def stop_at_2(t):
        if t.iter == 2:
            t.stop()

    trainer = _trainer()
    trainer.register_hooks([hooks.CallbackHook(after_step=stop_at_2), _Recorder("a", log)])
    trainer.train(0, 10)
    assert trainer.should_stop
    assert trainer.iter == 3  # one past the last iteration run
    assert ("a", "after_step", 2) in log and ("a", "before_step", 3) not in log
    assert log[-1] == ("a", "after_train", 3)


class _Stateful(HookBase):
    def __init__(self):
        self.value = 0

    def after_step(self):
        self.value += 1

    def state_dict(self):
        return {"value": self.value}

    def load_state_dict(self, state_dict):
        self.value = state_dict["value"]


def test_trainer_state_dict_round_trip():
    trainer = _trainer()
    trainer.register_hooks([_Stateful(), HookBase()])
    trainer.train(0, 3)
    sd = trainer.state_dict()
    assert sd["iteration"] == 3
    assert sd["hooks"] == {"_Stateful": {"value": 3}}
    assert "optimizer" in sd
    other = _trainer()
    hook = _Stateful()
    other.register_hooks([hook])
    other.load_state_dict(sd)
    assert other.iter == 3 and hook.value == 3


def test_seeded_runs_are_identical():
    def run():
        torch.manual_seed(3)
        trainer = _trainer(data=random_batches())
        trainer.train(0, 5)
        return [v for v, _ in trainer.storage.history("total_loss").values()]

    first, second = run(), run()
    assert first == second and len(first) == 5


def test_base_trainer_run_step_is_abstract():
    with pytest.raises(NotImplementedError):
        TrainerBase().train(0, 1)


def test_amp_trainer_on_cpu_trains():
    model = ToyModel()
    trainer = AMPTrainer(model, seeded_batches(0), torch.optim.SGD(model.parameters(), lr=0.1))
    assert trainer.grad_scaler is None  # no scaler on the CPU
    assert trainer.precision in (torch.bfloat16, None)
    trainer.train(0, 3)
    loss = trainer.storage.history("total_loss").latest()
    assert math.isfinite(loss)
    assert "grad_scaler" not in trainer.state_dict()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_trainer_on_cuda_uses_grad_scaler():
    model = ToyModel().cuda()
    data = (b.cuda() for b in seeded_batches(0))
    trainer = AMPTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1))
    assert trainer.precision == torch.float16 and trainer.grad_scaler is not None
    trainer.train(0, 3)
    assert math.isfinite(trainer.storage.history("total_loss").latest())
    assert "grad_scaler" in trainer.state_dict()


def test_amp_trainer_falls_back_to_float32_without_native_bf16(monkeypatch, caplog):
    import d2lite.engine.train_loop as train_loop

    monkeypatch.setattr(train_loop, "_cpu_supports_bf16", lambda: False)
    model = ToyModel()
    trainer = AMPTrainer(model, seeded_batches(0), torch.optim.SGD(model.parameters(), lr=0.1))
    assert trainer.precision is None
    assert "no native bfloat16" in caplog.text
    trainer.train(0, 2)
    assert math.isfinite(trainer.storage.history("total_loss").latest())


class _RecordingWrites(SimpleTrainer):
    """Overrides ``_write_metrics`` with Detectron2's signature, as user trainers do."""

    def __init__(self, *args, delay=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.written, self.delay = [], delay

    def _write_metrics(self, loss_dict, data_time, prefix="", iter=None):
        time.sleep(self.delay)
        self.written.append(iter)
        super()._write_metrics(loss_dict, data_time, prefix, iter)


def test_async_write_calls_a_detectron2_style_override_in_order():
    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = _RecordingWrites(model, random_batches(), opt, async_write_metrics=True)
    trainer.train(0, 5)
    assert trainer.written == [0, 1, 2, 3, 4]
    # Detectron2's pool is shut down after one run; this one trains again.
    trainer.train(5, 7)
    assert trainer.written[-2:] == [5, 6]


def test_async_writes_reach_the_training_storage_while_a_hook_uses_another():
    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = _RecordingWrites(model, random_batches(), opt, async_write_metrics=True, delay=0.02)

    def throwaway_storage(t):
        # As PreciseBN and ValidationLoss do, while the background write is still pending.
        with EventStorage():
            time.sleep(0.05)

    trainer.register_hooks([hooks.CallbackHook(after_step=throwaway_storage)])
    trainer.train(0, 3)
    assert [it for _, it in trainer.storage.history("total_loss").values()] == [0, 1, 2]


def test_async_write_errors_are_logged(caplog):
    trainer = SimpleTrainer(
        _NaNModel(), random_batches(), torch.optim.SGD(ToyModel().parameters(), 0.1),
        async_write_metrics=True,
    )  # fmt: skip
    # Unlike Detectron2, whose loop trains on, a NaN found by the writing thread stops it too.
    with pytest.raises(FloatingPointError, match="iteration=5"):
        trainer.train(0, 20)
    assert trainer.iter < 19
    assert "Exception in writing metrics" in caplog.text
    assert "iteration=5" in caplog.text


def test_executor_exists_without_async_writes():
    trainer = _trainer()
    assert trainer.concurrent_executor.submit(lambda: 3).result() == 3


def test_reset_data_loader_replaces_the_batches():
    model = ToyModel()
    seen = []

    class Record(HookBase):  # CallbackHook drops its callables after one run, as Detectron2's
        def after_step(self):
            seen.append(float(self.trainer.data_loader is second))

    second = seeded_batches(100)
    trainer = SimpleTrainer(model, seeded_batches(0), torch.optim.SGD(model.parameters(), 0.1))
    trainer.register_hooks([Record()])
    trainer.train(0, 2)
    trainer.reset_data_loader(lambda: second)
    trainer.train(0, 2)
    assert seen == [0.0, 0.0, 1.0, 1.0]


def test_write_metrics_prefixes_every_loss_and_defaults_to_the_current_storage():
    losses = {"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(2.0)}
    with EventStorage() as s:
        SimpleTrainer.write_metrics(losses, 0.5, 3, prefix="val_")
    latest = s.latest()
    assert latest["val_total_loss"] == (3.0, 3)
    assert latest["val_loss_a"] == (1.0, 3) and "loss_a" not in latest
    assert latest["data_time"] == (0.5, 3)


class _NoisyModel(ToyModel):
    """Its losses draw from the global torch, numpy and Python RNGs, as dropout or a user's
    random augmentation inside the model would."""

    def forward(self, batch):
        out = super().forward(batch)
        noise = torch.rand(()) + float(np.random.rand()) + random.random()
        return {**out, "loss_noise": noise * 1e-3}


def _losses(trainer) -> list[float]:
    return [v for v, _ in trainer.storage.history("total_loss").values()]


def test_a_loaded_state_continues_the_global_random_streams():
    torch.manual_seed(0)
    model = _NoisyModel()
    initial = copy.deepcopy(model.state_dict())
    trainer = _trainer(model=model, data=seeded_batches(0))
    saved = {}

    class Save(HookBase):
        def after_step(self):
            if self.trainer.iter == 2:
                # Through torch.save/load(weights_only=True), as a checkpoint goes.
                buffer = io.BytesIO()
                torch.save({"model": model.state_dict(), "trainer": trainer.state_dict()}, buffer)
                saved.update(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))

    trainer.register_hooks([Save()])
    trainer.train(0, 6)
    full = _losses(trainer)

    resumed_model = _NoisyModel()
    resumed_model.load_state_dict(initial)
    resumed_model.load_state_dict(saved["model"])
    resumed = _trainer(model=resumed_model, data=seeded_batches(3))
    resumed.load_state_dict(saved["trainer"])
    # Whatever ran in between, train() starts from the saved random state.
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    resumed.train(resumed.iter + 1, 6)
    assert _losses(resumed) == full[3:]


def test_a_state_without_rng_still_loads_and_warns_at_train(caplog):
    trainer = _trainer()
    trainer.train(0, 2)
    old = trainer.state_dict()
    del old["rng"]  # as d2lite saved it before
    other = _trainer()
    other.load_state_dict(old)
    other.train(old["iteration"] + 1, 4)
    assert "no RNG state" in caplog.text
    assert other.iter == 4


class _DivergingModel(ToyModel):
    """Raises inside the forward at iteration 3, as the RPN does on non-finite boxes."""

    def forward(self, batch):
        if get_event_storage().iter == 3:
            raise FloatingPointError("Predicted boxes or scores contain Inf/NaN.")
        return super().forward(batch)


def test_a_floating_point_error_from_the_model_names_the_iteration_and_last_losses():
    trainer = _trainer(model=_DivergingModel())
    with pytest.raises(FloatingPointError) as info:
        trainer.train(0, 10)
    message = str(info.value)
    assert "iteration 3" in message and "Inf/NaN" in message
    assert "last logged losses (iteration 2)" in message
    last = trainer.storage.history("loss_mse").latest()
    assert f"loss_mse={last:.6g}" in message
    assert isinstance(info.value.__cause__, FloatingPointError)  # the original, chained


def test_a_floating_point_error_before_any_loss_says_so():
    class Immediately(ToyModel):
        def forward(self, batch):
            raise FloatingPointError("boom")

    with pytest.raises(FloatingPointError, match="iteration 0: boom\nno loss was logged"):
        _trainer(model=Immediately()).train(0, 2)


def _jittered(row):
    return row + torch.from_numpy(np.random.rand(5).astype(np.float32)) * 0.01


def _resumable_loader(seed: int = 0):
    """Rows of the toy regression with random jitter, from d2lite's resumable batch loader."""
    from d2lite.data import DatasetFromList, MapDataset, build_batch_data_loader
    from d2lite.data.samplers import TrainingSampler

    rows = list(torch.rand(7, 5, generator=torch.Generator().manual_seed(0)))
    dataset = MapDataset(DatasetFromList(rows), _jittered)
    sampler = TrainingSampler(7, seed=seed)
    return build_batch_data_loader(dataset, sampler, 3, collate_fn=torch.stack)


class _SaveAt(HookBase):
    """Keeps the trainer's and the model's state after iteration ``it``, as a checkpoint."""

    def __init__(self, it: int) -> None:
        self.it, self.trainer_state, self.model_state = it, {}, {}

    def after_step(self):
        if self.trainer.iter == self.it:
            self.trainer_state = copy.deepcopy(self.trainer.state_dict())
            self.model_state = copy.deepcopy(self.trainer.model.state_dict())


def test_the_data_loader_position_is_saved_and_resumed():
    torch.manual_seed(0)
    trainer = _trainer(data=_resumable_loader())
    saved = _SaveAt(2)
    trainer.register_hooks([saved])
    trainer.train(0, 6)
    assert saved.trainer_state["data_loader"]["start"] == 9  # 3 batches of 3 rows

    model = ToyModel()
    model.load_state_dict(saved.model_state)
    resumed = _trainer(model=model, data=_resumable_loader(seed=5))
    resumed.load_state_dict(saved.trainer_state)
    resumed.train(3, 6)
    assert _losses(resumed) == _losses(trainer)[3:]


def test_a_state_without_data_loader_position_warns_that_the_order_restarts(caplog):
    trainer = _trainer(data=_resumable_loader())
    trainer.train(0, 2)
    old = trainer.state_dict()
    del old["data_loader"]  # as d2lite saved it before
    _trainer(data=_resumable_loader()).load_state_dict(old)
    assert "data order restarts" in caplog.text
    caplog.clear()
    _trainer(data=random_batches()).load_state_dict(trainer.state_dict())
    assert "cannot load it: the data order restarts" in caplog.text


def test_other_ranks_keep_their_own_random_state(monkeypatch):
    from d2lite.utils import comm

    trainer = _trainer(model=_NoisyModel())
    trainer.train(0, 1)
    saved = trainer.state_dict()
    monkeypatch.setattr(comm, "get_rank", lambda: 1)
    other = _trainer(model=_NoisyModel())
    other.load_state_dict(saved)
    torch.manual_seed(5)
    expected = torch.rand(())
    torch.manual_seed(5)
    other.train(1, 1)  # no step: just where train() restores the RNG states
    assert torch.equal(torch.rand(()), expected)


def test_is_due_every_period_and_at_the_last_iteration():
    from d2lite.engine.train_loop import is_due

    assert [it for it in range(8) if is_due(it, 8, 3)] == [2, 5, 7]
    # The last iteration is due even when it is also periodic, once.
    assert [it for it in range(6) if is_due(it, 6, 3)] == [2, 5]
    # last=False leaves the last iteration to after_train.
    assert [it for it in range(8) if is_due(it, 8, 3, last=False)] == [2, 5]
    assert [it for it in range(6) if is_due(it, 6, 3, last=False)] == [2]
    # A period of 0 (or less) is never periodic: only the last iteration is due.
    assert [it for it in range(4) if is_due(it, 4, 0)] == [3]
    assert [it for it in range(4) if is_due(it, 4, -1, last=False)] == []


def test_hook_is_due_reads_the_trainers_iteration():
    due = []

    class Every2(HookBase):
        def after_step(self):
            if self.is_due(2):
                due.append(self.trainer.iter)

    trainer = _trainer()
    trainer.register_hooks([Every2()])
    trainer.train(3, 8)  # a resumed run: the rule counts from iteration 0, not from start_iter
    assert due == [3, 5, 7]


class _Outcome(HookBase):
    """Records trainer.outcome as the after_train hooks see it."""

    seen: list = []

    def after_train(self):
        self.seen.append((self.trainer.outcome, self.trainer.iter))


def test_outcome_finished_stopped_and_failed():
    trainer = _trainer()
    assert trainer.outcome is None
    hook = _Outcome()
    hook.seen = []
    trainer.register_hooks([hook])
    trainer.train(0, 3)
    assert hook.seen == [("finished", 3)] and trainer.outcome == "finished"

    trainer = _trainer()
    trainer.register_hooks(
        [hooks.CallbackHook(after_step=lambda t: t.iter == 1 and t.stop()), hook]
    )
    trainer.train(0, 5)
    assert hook.seen[-1] == ("stopped", 2)

    # A stop asked at the last iteration ends nothing early: the training finished.
    trainer = _trainer()
    trainer.register_hooks([hooks.CallbackHook(after_step=lambda t: t.stop()), hook])
    trainer.train(0, 1)
    assert hook.seen[-1] == ("finished", 1)

    trainer = _trainer(model=_NaNModel())
    trainer.register_hooks([hook])
    with pytest.raises(FloatingPointError):
        trainer.train(0, 20)
    assert hook.seen[-1] == ("failed", 5) and trainer.outcome == "failed"


def test_outcome_is_failed_after_an_interrupt():
    class Interrupt(HookBase):
        def after_step(self):
            raise KeyboardInterrupt

    hook = _Outcome()
    hook.seen = []
    trainer = _trainer()
    trainer.register_hooks([Interrupt(), hook])
    with pytest.raises(KeyboardInterrupt):
        trainer.train(0, 3)
    assert hook.seen == [("failed", 0)]


def test_a_nan_found_by_the_async_writer_after_the_last_step_is_a_failure():
    class NaNAtLast(ToyModel):
        def forward(self, batch):
            out = super().forward(batch)
            if get_event_storage().iter == 2:
                out["loss_mse"] = out["loss_mse"] * float("nan")
            return out

    hook = _Outcome()
    hook.seen = []
    model = NaNAtLast()
    trainer = SimpleTrainer(
        model, random_batches(), torch.optim.SGD(model.parameters(), 0.1), async_write_metrics=True
    )
    trainer.register_hooks([hook])
    with pytest.raises(FloatingPointError, match="iteration=2"):
        trainer.train(0, 3)
    # The loop ended, but the hooks learn of the NaN before they act on a finished run.
    assert hook.seen == [("failed", 3)]


def test_amp_is_part_of_simple_trainer():
    import inspect

    # One step for both: AMPTrainer only sets amp=True, with Detectron2's constructor.
    assert "run_step" not in vars(AMPTrainer) and issubclass(AMPTrainer, SimpleTrainer)
    assert list(inspect.signature(AMPTrainer).parameters) == [
        "model",
        "data_loader",
        "optimizer",
        "gather_metric_period",
        "zero_grad_before_forward",
        "grad_scaler",
        "precision",
        "log_grad_scaler",
        "async_write_metrics",
    ]
    model = ToyModel()
    plain = SimpleTrainer(model, seeded_batches(0), torch.optim.SGD(model.parameters(), lr=0.1))
    assert plain.precision is None and plain.grad_scaler is None
    amp = SimpleTrainer(
        model, seeded_batches(0), torch.optim.SGD(model.parameters(), lr=0.1), amp=True
    )
    assert amp.precision in (torch.bfloat16, None) and amp.device_type == "cpu"
    amp.train(0, 2)
    assert math.isfinite(amp.storage.history("total_loss").latest())


def test_a_grad_scaler_is_saved_and_loaded_under_grad_scaler():
    class Scaler:
        """Stands for torch.amp.GradScaler on a machine without CUDA (state only)."""

        def __init__(self, scale):
            self.scale = scale

        def state_dict(self):
            return {"scale": self.scale}

        def load_state_dict(self, state):
            self.scale = state["scale"]

    model = ToyModel()
    trainer = _trainer(model=model)
    trainer.grad_scaler = Scaler(8.0)
    state = trainer.state_dict()
    assert state["grad_scaler"] == {"scale": 8.0}
    other = _trainer(model=model)
    other.grad_scaler = Scaler(1.0)
    other.load_state_dict(state)
    assert other.grad_scaler.scale == 8.0
