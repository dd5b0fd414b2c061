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
