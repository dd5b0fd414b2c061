from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from d2lite.utils.events import (
    CommonMetricPrinter,
    EventStorage,
    EventWriter,
    JSONWriter,
    TensorboardXWriter,
    event_storage_or_none,
    get_event_storage,
    has_event_storage,
)


def test_storage_stack_and_errors():
    assert event_storage_or_none() is None
    with pytest.raises(AssertionError, match="inside 'with EventStorage"):
        get_event_storage()
    with EventStorage(5) as s:
        assert get_event_storage() is s and s.iter == 5
        with pytest.raises(KeyError, match="No history metric available for nope"):
            s.history("nope")


def test_json_writer_writes_only_new_scalars(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    writer = JSONWriter(str(path), window_size=2)
    with EventStorage() as s:
        for it in range(3):
            s.iter = it
            s.put_scalar("loss", float(it))
            s.put_scalar("lr", 0.1, smoothing_hint=False)
        writer.write()
        writer.write()  # nothing new: no line
        s.iter = 3
        s.put_scalar("bbox/AP", 50.0, smoothing_hint=False)
        writer.write()
    writer.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    # "loss" is the median of the last 2 values (1, 2).
    assert lines == [{"iteration": 2, "loss": 1.5, "lr": 0.1}, {"iteration": 3, "bbox/AP": 50.0}]


def test_json_writer_appends(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 0}\n')
    writer = JSONWriter(str(path))
    with EventStorage(1) as s:
        s.put_scalar("x", 1.0)
        writer.write()
    writer.close()
    assert len(path.read_text().splitlines()) == 2


def test_tensorboard_writer_creates_event_file(tmp_path):
    writer = TensorboardXWriter(str(tmp_path))
    with EventStorage() as s:
        s.put_scalar("loss", 1.0)
        s.put_image("vis", torch.randint(0, 255, (3, 8, 8)).float())
        writer.write()
        assert s._vis_data == []  # images are consumed once written
    writer.close()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))


def test_common_metric_printer_format(caplog):
    printer = CommonMetricPrinter(max_iter=100, window_size=20)
    with EventStorage() as s:
        for it in range(10):
            s.iter = it
            s.put_scalars(total_loss=1.0, loss_cls=0.25, time=0.5, data_time=0.01)
            s.put_scalar("lr", 0.00125, smoothing_hint=False)
        with caplog.at_level(logging.INFO, logger="d2lite"):
            printer.write()
        assert s.latest()["eta_seconds"][0] == pytest.approx(0.5 * 90)
        s.iter = 100
        printer.write()  # after training: nothing
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg.startswith(" eta: 0:00:45  iter: 9  ")
    for part in ["total_loss: 1", "loss_cls: 0.25", "time: 0.5000", "last_time: 0.5000"]:
        assert part in msg
    assert "data_time: 0.0100" in msg and "lr: 0.00125" in msg
    assert ("max_mem" in msg) == torch.cuda.is_available()


def test_event_writer_base_is_abstract():
    with pytest.raises(NotImplementedError):
        EventWriter().write()


def test_has_event_storage_follows_the_with_block():
    assert not has_event_storage()
    with EventStorage() as outer:
        assert has_event_storage()
        with EventStorage() as inner:
            assert get_event_storage() is inner
        assert get_event_storage() is outer
    assert not has_event_storage()


def test_count_samples_counts_iterations_not_values():
    with EventStorage() as s:
        for it in range(20):
            s.iter = it
            s.put_scalar("every", it)
            if it % 5 == 4:
                s.put_scalar("sparse", it)
        # The window covers iterations 10..19: 10 values of "every", 2 of "sparse" (14, 19).
        assert s.count_samples("every", 10) == 10
        assert s.count_samples("sparse", 10) == 2
        assert s.count_samples("never_put", 10) == 0
        assert "never_put" not in s.histories()  # asking did not create an empty history
        smoothed = s.latest_with_smoothing_hint(10)
        assert smoothed["every"] == (14.5, 19)
        assert smoothed["sparse"] == (16.5, 19)


def test_json_writer_median_of_a_sparse_scalar_uses_its_window(tmp_path):
    path = tmp_path / "metrics.json"
    writer = JSONWriter(str(path), window_size=10)
    with EventStorage() as s:
        for it in range(20):
            s.iter = it
            if it % 5 == 4:
                s.put_scalar("total_loss", float(it))
            if it % 10 == 9:
                writer.write()
    writer.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    # Each write takes the two values of its last 10 iterations, not the last 10 values.
    assert lines == [{"iteration": 9, "total_loss": 6.5}, {"iteration": 19, "total_loss": 16.5}]


def test_name_scope_prefixes_and_restores():
    with EventStorage() as s:
        with s.name_scope("val/"):
            s.put_scalar("loss", 1.0)
        s.put_scalar("loss", 2.0)
        with pytest.raises(RuntimeError):
            with s.name_scope("broken"):
                raise RuntimeError
        s.put_scalar("after", 3.0)
    assert set(s.latest()) == {"val/loss", "loss", "after"}
    assert s.iteration == s.iter == 0


def test_smoothing_hint_must_not_change():
    with EventStorage() as s:
        s.put_scalar("lr", 0.1, smoothing_hint=False)
        with pytest.raises(AssertionError, match="different smoothing_hint"):
            s.put_scalar("lr", 0.2)


def test_put_histogram_queues_tensorboard_arguments():
    with EventStorage(7) as s:
        s.put_histogram("weights", torch.tensor([[0.0, 1.0], [1.0, 3.0]]), bins=3)
    (params,) = s._histograms
    assert params["tag"] == "weights" and params["global_step"] == 7
    assert (params["min"], params["max"], params["num"]) == (0.0, 3.0, 4)
    assert params["sum"] == 5.0 and params["sum_squares"] == 11.0
    assert params["bucket_limits"] == [1.0, 2.0, 3.0]
    assert params["bucket_counts"] == [1.0, 2.0, 1.0]
    s.clear_histograms()
    assert s._histograms == []


class _FakeSummaryWriter:
    def __init__(self):
        self.calls = []

    def add_scalar(self, *args):
        self.calls.append(("scalar", *args))

    def add_image(self, name, img, step):
        self.calls.append(("image", name, float(img.max()), step))

    def add_histogram_raw(self, **params):
        self.calls.append(("histogram", params["tag"], params["global_step"]))

    def close(self):
        self.calls.append(("close",))


def test_tensorboard_writer_writes_images_histograms_once():
    writer = TensorboardXWriter("unused")
    fake = writer.__dict__["_writer"] = _FakeSummaryWriter()
    with EventStorage(3) as s:
        s.put_scalar("loss", 2.0)
        s.put_image("float255", torch.full((3, 4, 4), 200.0))
        s.put_image("uint8", torch.full((3, 4, 4), 200, dtype=torch.uint8))
        s.put_histogram("h", torch.rand(10))
        writer.write()
        writer.write()  # nothing new the second time
    writer.close()
    assert fake.calls == [
        ("scalar", "loss", 2.0, 3),
        ("image", "float255", pytest.approx(200 / 255), 3),  # float images rescaled to [0, 1]
        ("image", "uint8", 200.0, 3),  # uint8 images as they are (SummaryWriter reads 0..255)
        ("histogram", "h", 3),
        ("close",),
    ]


def test_tensorboard_writer_event_file_holds_scalars_and_histograms(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = TensorboardXWriter(str(tmp_path))
    with EventStorage(4) as s:
        s.put_scalar("validation_loss", 0.75)
        s.put_histogram("weights", torch.arange(10.0))
        writer.write()
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (scalar,) = events.Scalars("validation_loss")
    assert (scalar.step, scalar.value) == (4, 0.75)
    assert events.Histograms("weights")[0].step == 4


def test_tensorboard_writer_close_without_writes_creates_nothing(tmp_path):
    TensorboardXWriter(str(tmp_path / "tb")).close()
    assert not (tmp_path / "tb").exists()


def _put_progress(s, iters, lr=True):
    for it in iters:
        s.iter = it
        s.put_scalars(total_loss=float(it), loss_cls=0.5, time=0.25 + it, data_time=0.01 * it)
        s.put_scalar("[metric]fg_ratio", 0.125)
        s.put_scalar("accuracy", 0.9)  # neither a loss nor a [metric]: not printed
        if lr:
            s.put_scalar("lr", 0.0025, smoothing_hint=False)


def test_common_metric_printer_line_is_detectron2_s(caplog):
    printer = CommonMetricPrinter(max_iter=10, window_size=2)
    with EventStorage() as s:
        _put_progress(s, range(4))
        with caplog.at_level(logging.INFO, logger="d2lite.utils.events"):
            printer.write()
    (msg,) = [r.getMessage() for r in caplog.records]
    memory = ""
    if torch.cuda.is_available():
        memory = f"max_mem: {torch.cuda.max_memory_allocated() / 1024.0 / 1024.0:.0f}M"
    # eta: median time (1.75) * 6 iterations left; time: the mean of all 4; data_time: the mean
    # of the window's 2; losses and [metric] scalars: medians over the window.
    assert msg == (
        " eta: 0:00:10  iter: 3  total_loss: 2.5  loss_cls: 0.5  [metric]fg_ratio: 0.125  "
        "time: 1.7500  last_time: 3.2500  data_time: 0.0250  last_data_time: 0.0300   "
        "lr: 0.0025  " + memory
    )


def test_common_metric_printer_without_timer_or_lr(caplog):
    printer = CommonMetricPrinter()
    with EventStorage() as s:
        s.put_scalar("loss_box_reg", 0.5)
        with caplog.at_level(logging.INFO, logger="d2lite.utils.events"):
            printer.write()
    msg = caplog.records[0].getMessage()
    assert msg.startswith(" iter: 0  loss_box_reg: 0.5  ")
    assert " lr: N/A  " in msg and "eta" not in msg and "time" not in msg


def test_common_metric_printer_estimates_eta_without_a_timer(caplog, monkeypatch):
    import d2lite.utils.events as events

    clock = iter([100.0, 110.0, 110.0, 120.0])
    monkeypatch.setattr(events.time, "perf_counter", lambda: next(clock))
    printer = CommonMetricPrinter(max_iter=30)
    with EventStorage() as s, caplog.at_level(logging.INFO, logger="d2lite.utils.events"):
        printer.write()  # the first write has no earlier one to measure from
        s.iter = 10
        printer.write()  # 10 s for 10 iterations; 19 to go
        printer.write()  # the same iteration again: no estimate, and no division by zero
    msgs = [r.getMessage() for r in caplog.records]
    assert "eta" not in msgs[0] and msgs[1].startswith(" eta: 0:00:19  iter: 10")
    assert "eta" not in msgs[2]


def test_metric_printer_logs_under_its_module_name():
    # After the import-prefix change a script finds it as logging.getLogger("d2lite.utils.events").
    printer = CommonMetricPrinter()
    assert printer.logger is logging.getLogger("d2lite.utils.events")


def _json_run(path, start_iter: int, end_iter: int, value: float) -> None:
    writer = JSONWriter(str(path))
    with EventStorage(start_iter) as storage:
        for it in range(start_iter, end_iter):
            storage.iter = it
            storage.put_scalar("loss", value, smoothing_hint=False)
            if it % 2 == 1:
                writer.write()
    writer.close()


def test_json_writer_of_a_resumed_run_drops_the_lines_past_its_start(tmp_path):
    path = tmp_path / "metrics.json"
    _json_run(path, 0, 8, value=1.0)  # killed after iteration 7, resumed from 4
    with open(path, "a") as f:
        f.write('{"iteration": 8, "lo')  # the half-written line of a killed run
    _json_run(path, 4, 10, value=2.0)
    rows = [json.loads(line) for line in open(path)]
    assert [(r["iteration"], r["loss"]) for r in rows] == [
        (1, 1.0), (3, 1.0), (5, 2.0), (7, 2.0), (9, 2.0)
    ]  # fmt: skip
    _json_run(path, 0, 2, value=3.0)  # a fresh run appends, as in Detectron2
    assert [json.loads(line)["iteration"] for line in open(path)] == [1, 3, 5, 7, 9, 1]


def test_tensorboard_writer_of_a_resumed_run_purges_the_steps_past_its_start(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for start, end, value in [(0, 8, 1.0), (4, 10, 2.0)]:
        writer = TensorboardXWriter(str(tmp_path))
        with EventStorage(start) as storage:
            for it in range(start, end):
                storage.iter = it
                storage.put_scalar("loss", value, smoothing_hint=False)
                writer.write()
        writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    steps = [(e.step, e.value) for e in events.Scalars("loss")]
    assert steps == [(i, 1.0) for i in range(4)] + [(i, 2.0) for i in range(4, 10)]
