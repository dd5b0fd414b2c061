"""The writers of a training run (``default_writers``): what the terminal shows, ``metrics.json``,
TensorBoard, and ``training_curves.png`` when training ends.

On a terminal the progress is a tqdm bar (iterations, ETA, losses, LR); elsewhere (CI, log
files, ``nohup``) it is Detectron2's periodic ``CommonMetricPrinter`` line, which log parsers
and Detectron2's tests read. ``metrics.json`` and TensorBoard get the same scalars either way.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO

from tqdm import tqdm

from d2lite.utils import comm
from d2lite.utils.events import (
    CommonMetricPrinter,
    EventStorage,
    EventWriter,
    JSONWriter,
    TensorboardXWriter,
    get_event_storage,
)
from d2lite.utils.plot_metrics import plot_training_curves

from .train_loop import is_due

__all__ = ["default_writers", "ProgressBarWriter", "TrainingCurvesWriter", "is_terminal"]

logger = logging.getLogger(__name__)

# Loggers whose terminal handlers print above the bar while it is shown (default_setup
# configures "d2lite" and "fvcore"; the root logger is the user's).
_REDIRECTED_LOGGERS = ("", "d2lite", "fvcore")
# The bar's size on a terminal that does not report one (a pty without a window, as
# `script` or `docker exec -t` give): tqdm would read -1 columns and rows and draw nothing.
_FALLBACK_COLUMNS, _FALLBACK_ROWS = 120, 24
# A fixed-width bar: tqdm's default gives the bar what the text leaves, i.e. nothing once the
# losses are listed. A line wider than the terminal loses its end, so the LR and the total
# loss come first in the postfix.
_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar:16}| {n_fmt}/{total_fmt} "
    "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


def _reports_width(stream: IO) -> bool:
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False


def is_terminal(stream: IO | None) -> bool:
    """Whether ``stream`` is an open terminal (False for files, pipes and closed streams)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or "I/O operation on closed file"
        return False


def default_writers(
    output_dir: str, max_iter: int | None = None, *, stream: IO | None = None
) -> list[EventWriter]:
    """Returns the writers ``DefaultTrainer.build_writers`` gives ``PeriodicWriter``.

    1. ``ProgressBarWriter`` when ``stream`` is a terminal, else ``CommonMetricPrinter``;
    2. ``JSONWriter`` (``output_dir/metrics.json``); 3. ``TensorboardXWriter`` (``output_dir``);
    4. ``TrainingCurvesWriter`` (``output_dir/training_curves.png``, drawn at the end).

    Args:
        output_dir (str): where the files go; created if missing.
        max_iter (int | None): the number of iterations, for the ETA. Defaults to None.
        stream (IO | None): the terminal to show progress on. Defaults to None (stdout).
    """
    os.makedirs(output_dir, exist_ok=True)
    stream = sys.stdout if stream is None else stream
    if is_terminal(stream):
        printer: EventWriter = ProgressBarWriter(max_iter, stream=stream)
    else:
        printer = CommonMetricPrinter(max_iter)
    json_file = os.path.join(output_dir, "metrics.json")
    return [
        printer,
        JSONWriter(json_file),
        TensorboardXWriter(output_dir),
        TrainingCurvesWriter(json_file, os.path.join(output_dir, "training_curves.png")),
    ]


class _PrintAboveBar(logging.Handler):
    """Stands in for a terminal handler while a bar is shown: prints its records with
    ``tqdm.write``, which clears the bar, prints, and redraws it (no torn lines)."""

    def __init__(self, console: logging.StreamHandler) -> None:
        super().__init__(console.level)
        self.console = console
        self.setFormatter(console.formatter)
        for f in console.filters:
            self.addFilter(f)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.console.stream)
        except Exception:
            self.handleError(record)


class ProgressBarWriter(CommonMetricPrinter):
    """A progress bar on a terminal: iterations, elapsed time and ETA, the losses (medians
    over ``window_size`` iterations) and the LR, updated every iteration (``period = 1``).

    Every ``log_period`` iterations and at the last one it logs ``CommonMetricPrinter``'s line
    at DEBUG: ``log.txt`` keeps it, the terminal shows the bar instead, and ``eta_seconds``
    reaches ``metrics.json`` as with the printer. While the bar is shown, log records for the
    same terminal print above it. The bar closes after the last iteration, before the final
    evaluation logs.

    Args:
        max_iter (int | None): the number of iterations. Defaults to None (no total).
        window_size (int): median window, in iterations. Defaults to 20.
        stream (IO | None): the terminal. Defaults to None (stdout).
        log_period (int): iterations between two DEBUG lines. Defaults to 20.
    """

    period = 1

    def __init__(
        self,
        max_iter: int | None = None,
        window_size: int = 20,
        *,
        stream: IO | None = None,
        log_period: int = 20,
    ) -> None:
        super().__init__(max_iter, window_size)
        self._stream = sys.stdout if stream is None else stream
        self._log_period = log_period
        self._bar: tqdm | None = None
        self._swapped: list[tuple[logging.Logger, list[logging.Handler]]] = []

    def write(self) -> None:
        storage = get_event_storage()
        it = storage.iter
        if self._max_iter is not None and it >= self._max_iter:
            return  # called after training ended: the bar is complete
        if self._bar is None:
            self._bar = self._open_bar(it)
            self._print_logs_above_bar()
        self._bar.set_postfix_str(self._postfix(storage), refresh=False)
        self._bar.update(it + 1 - self._bar.n)
        max_iter = -1 if self._max_iter is None else self._max_iter  # no total: no last iteration
        if is_due(it, max_iter, self._log_period):
            self.logger.debug(self._format_line(storage))
        if it == max_iter - 1:
            self.close()

    def _open_bar(self, first_iter: int) -> tqdm:
        sized = _reports_width(self._stream)
        # initial=first_iter: a resumed run starts the bar (and its rate) where it resumes.
        return tqdm(
            total=self._max_iter, initial=first_iter, file=self._stream, desc="train",
            unit="it", bar_format=_BAR_FORMAT, dynamic_ncols=sized,
            ncols=None if sized else _FALLBACK_COLUMNS, nrows=None if sized else _FALLBACK_ROWS,
        )  # fmt: skip

    def _postfix(self, storage: EventStorage) -> str:
        """``"lr 0.00095, loss 1.52 (cls 0.83, box_reg 0.31, ...)"``: the latest LR and the
        window's median losses."""
        medians = {
            k: h.median(storage.count_samples(k, self._window_size))
            for k, h in storage.histories().items()
            if "loss" in k and not k.startswith("val_")
        }
        total = medians.pop("total_loss", None)
        parts = ", ".join(f"{k.replace('loss_', '')} {v:.3g}" for k, v in medians.items())
        text = parts if total is None else f"loss {total:.3g}" + (f" ({parts})" if parts else "")
        if "lr" in storage.histories():
            text = f"lr {storage.history('lr').latest():.3g}, {text}"
        return text

    def _print_logs_above_bar(self) -> None:
        for name in _REDIRECTED_LOGGERS:
            log = logging.getLogger(name)
            on_terminal = [
                h
                for h in log.handlers
                if isinstance(h, logging.StreamHandler) and h.stream is self._stream
            ]
            if on_terminal:
                self._swapped.append((log, list(log.handlers)))
                log.handlers = [_PrintAboveBar(h) if h in on_terminal else h for h in log.handlers]

    def close(self) -> None:
        for log, handlers in self._swapped:
            log.handlers = handlers
        self._swapped = []
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TrainingCurvesWriter(EventWriter):
    """Draws the losses and LR of ``json_file`` into ``output_file`` when closed, i.e. when
    training ends (``PeriodicWriter`` closes its writers in order, so put this after the
    ``JSONWriter``). Main process only. Drawing never fails the run: an error is a warning.

    Args:
        json_file (str): the ``metrics.json`` to read.
        output_file (str): the PNG to write.
    """

    def __init__(self, json_file: str, output_file: str) -> None:
        self._json_file = json_file
        self._output_file = output_file

    def write(self) -> None:
        pass  # the curves are drawn once, at close

    def close(self) -> None:
        if not comm.is_main_process():
            return
        try:
            plot_training_curves(self._json_file, self._output_file)
        except Exception as e:  # a picture is never worth a failed run
            logger.warning(f"Could not draw {self._output_file} from {self._json_file}: {e!r}")
            return
        logger.info(f"Training curves (losses, LR): {self._output_file}")
