"""The writers ``default_writers`` chooses: a progress bar on a terminal, Detectron2's lines
elsewhere, and training_curves.png at the end of training."""
from __future__ import annotations

import io
import json
import logging

import pytest
import torch
from engine_toys import ToyModel, random_batches

from d2lite.engine import hooks
from d2lite.engine.train_loop import SimpleTrainer
from d2lite.engine.writers import (
    ProgressBarWriter,
    TrainingCurvesWriter,
    default_writers,
    is_terminal,
)
from d2lite.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, so the bar can be read back as text."""

    def isatty(self) -> bool:
        return True


def _train(writers, max_iter: int = 30) -> SimpleTrainer:
    model = ToyModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    trainer = SimpleTrainer(model, random_batches(), optimizer)
    trainer.register_hooks(
        [
            hooks.IterationTimer(warmup_iter=0),
            hooks.LRScheduler(optimizer, scheduler),
            hooks.PeriodicWriter(writers, period=20),
        ]
    )
    trainer.train(0, max_iter)
    return trainer


def _metrics(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def test_is_terminal_for_ttys_only(tmp_path):
    assert is_terminal(FakeTerminal())
    assert not is_terminal(io.StringIO())
    assert not is_terminal(None)
    closed = open(tmp_path / "log", "w")
    closed.close()
    assert not is_terminal(closed)  # isatty() of a closed file raises ValueError


def test_default_writers_show_a_bar_on_a_terminal_and_lines_elsewhere(tmp_path):
    on_tty = default_writers(str(tmp_path / "a"), 30, stream=FakeTerminal())
    assert [type(w) for w in on_tty] == [
        ProgressBarWriter,
        JSONWriter,
        TensorboardXWriter,
        TrainingCurvesWriter,
    ]
    piped = default_writers(str(tmp_path / "b"), 30, stream=io.StringIO())
    assert type(piped[0]) is CommonMetricPrinter
    # The bar is written every iteration, the others at PeriodicWriter's period.
    assert on_tty[0].period == 1 and piped[0].period is None and on_tty[1].period is None


def test_progress_bar_shows_iterations_losses_and_lr_and_keeps_metrics_json(tmp_path, caplog):
    tty = FakeTerminal()
    with caplog.at_level(logging.DEBUG, logger="d2lite"):
        _train(default_writers(str(tmp_path / "tty"), 30, stream=tty))
    text = tty.getvalue()
    assert "train: 100%" in text and "30/30" in text
    last = text.replace("\r", "\n").splitlines()[-1]
    assert "lr 0.025, loss " in last and "(mse " in last and ", l1 " in last
    # A terminal that reports no size (a pty without a window) gets 120 columns, not none.
    assert "|################|" in last and len(last.rstrip()) <= 120
    # Detectron2's line still reaches log.txt, at DEBUG (the terminal shows INFO and up).
    lines = [r for r in caplog.records if r.name == "d2lite.utils.events"]
    assert [r.levelno for r in lines] == [logging.DEBUG, logging.DEBUG]
    assert "iter: 19" in lines[0].getMessage() and "eta: 0:00:00  iter: 29" in lines[1].getMessage()

    _train(default_writers(str(tmp_path / "pipe"), 30, stream=io.StringIO()))
    with_bar = _metrics(tmp_path / "tty" / "metrics.json")
    without = _metrics(tmp_path / "pipe" / "metrics.json")
    assert [r["iteration"] for r in with_bar] == [r["iteration"] for r in without] == [19, 29]
    assert [sorted(r) for r in with_bar] == [sorted(r) for r in without]
    assert "eta_seconds" in with_bar[0] and with_bar[1]["lr"] == without[1]["lr"] == 0.025


def test_logs_print_above_the_bar_and_handlers_come_back(tmp_path):
    tty = FakeTerminal()
    log = logging.getLogger("d2lite")
    console = logging.StreamHandler(tty)
    console.setLevel(logging.INFO)
    log.addHandler(console)
    log.setLevel(logging.DEBUG)
    seen = []

    def say_hello(trainer):
        seen.append(list(log.handlers))
        if trainer.iter == 5:
            logging.getLogger("d2lite.test").info("hello from iteration 5")
            logging.getLogger("d2lite.test").debug("a debug line stays off the terminal")

    bar = ProgressBarWriter(10, stream=tty)
    try:
        model = ToyModel()
        trainer = SimpleTrainer(model, random_batches(), torch.optim.SGD(model.parameters(), 0.1))
        trainer.register_hooks(
            [hooks.CallbackHook(after_step=say_hello), hooks.PeriodicWriter([bar], period=20)]
        )
        trainer.train(0, 10)
    finally:
        log.removeHandler(console)
    assert console not in seen[5]  # replaced while the bar was shown
    assert log.handlers.count(console) == 0 and not bar._swapped  # restored after the bar
    assert "hello from iteration 5\n" in tty.getvalue()  # a whole line, not torn by the bar
    assert "debug line" not in tty.getvalue()  # the terminal handler's level still applies


def test_training_curves_are_drawn_when_training_ends(tmp_path):
    out = tmp_path / "run"
    _train(default_writers(str(out), 30, stream=io.StringIO()))
    assert (out / "training_curves.png").stat().st_size > 1000


def test_training_curves_writer_never_fails_the_run(tmp_path, caplog):
    writer = TrainingCurvesWriter(str(tmp_path / "missing.json"), str(tmp_path / "c.png"))
    writer.write()
    writer.close()  # no metrics.json: a warning, not an exception
    assert "Could not draw" in caplog.text and "missing.json" in caplog.text
    (tmp_path / "empty.json").write_text('{"iteration": 0, "lr": 0.1}\n')
    TrainingCurvesWriter(str(tmp_path / "empty.json"), str(tmp_path / "c.png")).close()
    assert "no loss to draw" in caplog.text
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("stream", [io.StringIO(), FakeTerminal()])
def test_printer_choice_leaves_the_eta_in_storage(tmp_path, stream):
    trainer = _train(default_writers(str(tmp_path), 20, stream=stream), max_iter=20)
    assert trainer.storage.latest()["eta_seconds"][1] == 19
