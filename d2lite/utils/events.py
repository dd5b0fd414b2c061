"""Training events: ``EventStorage`` holds scalar histories, images and histograms for the
current run; writers (terminal, ``metrics.json``, TensorBoard) read it from hooks.

Model code logs through :func:`event_storage_or_none` so it runs outside a trainer too.
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Callable, Iterator

import torch
from fvcore.common.history_buffer import HistoryBuffer

from d2lite.utils.file_io import atomic_output

__all__ = [
    "EventStorage",
    "get_event_storage",
    "has_event_storage",
    "event_storage_or_none",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "CommonMetricPrinter",
]

logger = logging.getLogger(__name__)

_CURRENT_STORAGE_STACK: list["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """Returns the innermost active ``EventStorage``.

    Raises:
        AssertionError: outside a ``with EventStorage():`` block (as in Detectron2).
    """
    assert (
        _CURRENT_STORAGE_STACK
    ), "get_event_storage() has to be called inside 'with EventStorage(...)'!"
    return _CURRENT_STORAGE_STACK[-1]


def has_event_storage() -> bool:
    """Whether a ``with EventStorage():`` block is active."""
    return bool(_CURRENT_STORAGE_STACK)


def event_storage_or_none() -> "EventStorage | None":
    """Returns the innermost active ``EventStorage``, or None outside one."""
    return _CURRENT_STORAGE_STACK[-1] if _CURRENT_STORAGE_STACK else None


class EventStorage:
    """Scalars, images and histograms of a run, with the iteration they belong to.

    Writers read the attributes ``_history`` (name -> fvcore ``HistoryBuffer`` of
    ``(value, iteration)``), ``_latest_scalars`` (name -> ``(value, iteration)``),
    ``_smoothing_hints``, ``_vis_data`` and ``_histograms`` directly, as in Detectron2.

    Args:
        start_iter (int): the iteration the storage starts at. Defaults to 0.
    """

    def __init__(self, start_iter: int = 0) -> None:
        self._history: dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest_scalars: dict[str, tuple[float, int]] = {}
        self._iter = start_iter
        # Writers of a resumed run (start_iter > 0) drop what a killed run wrote past it.
        self._start_iter = start_iter
        self._current_prefix = ""
        self._vis_data: list[tuple[str, Any, int]] = []
        self._histograms: list[dict[str, Any]] = []

    def put_scalar(
        self, name: str, value: Any, smoothing_hint: bool = True, cur_iter: int | None = None
    ) -> None:
        """Adds ``value`` to the history of ``name``.

        Args:
            name (str): the scalar's name; the active ``name_scope`` is prepended.
            value (float | Tensor): a number, or a one-element tensor.
            smoothing_hint (bool): whether writers should report a median over a window
                rather than the latest value; must not change between calls. Defaults to True.
            cur_iter (int | None): the iteration to record. Defaults to the storage's.
        """
        name = self._current_prefix + name
        cur_iter = self._iter if cur_iter is None else cur_iter
        value = float(value.detach().item() if isinstance(value, torch.Tensor) else value)
        self._history[name].update(value, cur_iter)
        self._latest_scalars[name] = (value, cur_iter)
        existing = self._smoothing_hints.setdefault(name, smoothing_hint)
        assert existing == smoothing_hint, f"Scalar {name} was put with a different smoothing_hint!"

    def put_scalars(
        self, *, smoothing_hint: bool = True, cur_iter: int | None = None, **kwargs: Any
    ) -> None:
        """Puts several scalars at once: ``put_scalars(loss_cls=0.3, accuracy=0.9)``."""
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint=smoothing_hint, cur_iter=cur_iter)

    def put_image(self, img_name: str, img_tensor: Any) -> None:
        """Queues an RGB image (Tensor[3, H, W], in [0, 1] or [0, 255]) for TensorBoard."""
        self._vis_data.append((img_name, img_tensor, self._iter))

    def clear_images(self) -> None:
        """Drops the queued images; the TensorBoard writer calls it once it wrote them."""
        self._vis_data = []

    def put_histogram(self, hist_name: str, hist_tensor: torch.Tensor, bins: int = 1000) -> None:
        """Queues a histogram of the values of ``hist_tensor`` (any shape) for TensorBoard.

        Args:
            hist_name (str): the histogram's tag.
            hist_tensor (Tensor): the values.
            bins (int): number of equal-width bins between the min and max. Defaults to 1000.
        """
        values = hist_tensor.detach().float()
        lo, hi = values.min().item(), values.max().item()
        counts = torch.histc(values, bins=bins)
        edges = torch.linspace(lo, hi, steps=bins + 1, dtype=torch.float32)
        # The keyword arguments of SummaryWriter.add_histogram_raw.
        self._histograms.append(
            dict(
                tag=hist_name,
                min=lo,
                max=hi,
                num=values.numel(),
                sum=float(values.sum()),
                sum_squares=float((values**2).sum()),
                bucket_limits=edges[1:].tolist(),
                bucket_counts=counts.tolist(),
                global_step=self._iter,
            )
        )

    def clear_histograms(self) -> None:
        """Drops the queued histograms; the TensorBoard writer calls it once it wrote them."""
        self._histograms = []

    def history(self, name: str) -> HistoryBuffer:
        """Returns the ``HistoryBuffer`` of ``name``.

        Raises:
            KeyError: naming the scalar and those that exist.
        """
        if name not in self._history:
            raise KeyError(f"No history metric available for {name}! Have: {sorted(self._history)}")
        return self._history[name]

    def histories(self) -> dict[str, HistoryBuffer]:
        """Returns ``{name: HistoryBuffer}`` of every scalar."""
        return self._history

    def latest(self) -> dict[str, tuple[float, int]]:
        """Returns ``{name: (latest value, iteration it was put at)}``."""
        return self._latest_scalars

    def count_samples(self, name: str, window_size: int = 20) -> int:
        """Returns how many values of ``name`` were put in the last ``window_size`` iterations
        (counted back from the iteration of its latest value); 0 for an unknown name.
        """
        if name not in self._history:
            return 0
        values = self._history[name].values()
        cutoff = values[-1][1] - window_size  # values put at or before it are outside the window
        return sum(1 for _ in itertools.takewhile(lambda v: v[1] > cutoff, reversed(values)))

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """Like :meth:`latest`, with each smoothed scalar replaced by the median of its values
        from the last ``window_size`` iterations (not its last ``window_size`` values: a
        scalar put every 5 iterations has 2 values in a window of 10).
        """
        result = {}
        for k, (v, itr) in self._latest_scalars.items():
            if self._smoothing_hints[k]:
                v = self._history[k].median(self.count_samples(k, window_size))
            result[k] = (v, itr)
        return result

    def smoothing_hints(self) -> dict[str, bool]:
        """Returns ``{name: smoothing_hint}`` as given to :meth:`put_scalar`."""
        return self._smoothing_hints

    def step(self) -> None:
        """Advances the iteration by one (a trainer sets ``iter`` instead)."""
        self._iter += 1

    @property
    def iter(self) -> int:
        """The current iteration; inside a trainer, always equal to ``trainer.iter``."""
        return self._iter

    @iter.setter
    def iter(self, val: int) -> None:
        self._iter = int(val)

    @property
    def iteration(self) -> int:
        """Same as ``iter`` (an older name kept by Detectron2)."""
        return self._iter

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self
        _CURRENT_STORAGE_STACK.pop()

    @contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefixes every scalar put inside the block with ``name/``."""
        old_prefix = self._current_prefix
        self._current_prefix = name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix


class EventWriter:
    """Base of the writers that ``PeriodicWriter`` calls; they read the current storage.

    Attributes:
        period (int | None): iterations between two ``write`` calls; None (the default)
            means the ``PeriodicWriter``'s period. A live display (a progress bar) sets 1.
    """

    period: int | None = None

    def write(self) -> None:
        raise NotImplementedError  # abstract: each writer implements it

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Appends one JSON object per iteration, ``{"iteration": i, "loss_cls": ...}``, to a file.

    Each write covers the scalars put since the previous one, grouped by the iteration they were
    put at (one line per iteration, in order). A scalar put several times between two writes
    appears once, with its latest value, or, if it has a smoothing hint, the median of its
    values from the last ``window_size`` iterations.

    A resumed run (its storage starts at iteration s > 0) first drops the lines a previous run
    wrote for iterations >= s, so the file holds each iteration once; a line left half-written
    by a killed run is dropped too. A run from iteration 0 appends, as in Detectron2.

    Args:
        json_file (str): path of the file, opened for appending.
        window_size (int): median window, in iterations. Defaults to 20.
    """

    def __init__(self, json_file: str, window_size: int = 20) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(json_file)), exist_ok=True)
        self._json_file = json_file
        self._file_handle = open(json_file, "a")
        self._window_size = window_size
        self._last_write = -1
        self._cleaned = False

    def _drop_lines_from(self, start_iter: int) -> None:
        """Rewrites the file (atomically) without half-written lines or lines of iterations
        >= ``start_iter`` (when > 0)."""
        with open(self._json_file) as f:
            lines = f.readlines()
        kept = [k for k in (_kept_line(line, start_iter) for line in lines) if k is not None]
        if kept == lines:
            return
        dropped = len(lines) - len(kept)
        logger.info(f"{self._json_file}: dropping {dropped} half-written or resumed-over lines")
        with atomic_output(self._json_file) as tmp, open(tmp, "w") as f:
            f.writelines(kept)
        self._file_handle.close()
        self._file_handle = open(self._json_file, "a")

    def write(self) -> None:
        storage = get_event_storage()
        if not self._cleaned:
            self._cleaned = True
            self._drop_lines_from(getattr(storage, "_start_iter", 0))
        to_save: dict[int, dict] = defaultdict(dict)
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                to_save[itr][k] = v
        if to_save:
            self._last_write = max(to_save)
        for itr in sorted(to_save):
            line = {**to_save[itr], "iteration": itr}
            self._file_handle.write(json.dumps(line, sort_keys=True) + "\n")
        self._file_handle.flush()
        # fsync so a killed run leaves complete lines for the iterations it reported.
        os.fsync(self._file_handle.fileno())

    def close(self) -> None:
        self._file_handle.close()


def _kept_line(line: str, start_iter: int) -> str | None:
    """A metrics.json line to keep (newline-terminated), or None: not JSON (half-written by a
    killed run), or of an iteration >= ``start_iter`` when that is > 0."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    if start_iter > 0 and isinstance(row, dict) and row.get("iteration", -1) >= start_iter:
        return None
    return line if line.endswith("\n") else line + "\n"


class TensorboardXWriter(EventWriter):
    """Writes new scalars, and the queued images and histograms, to TensorBoard event files.

    A resumed run (its storage starts at iteration s > 0) passes ``purge_step=s``, so
    TensorBoard hides the steps >= s that a killed run wrote.

    Args:
        log_dir (str): directory of the event files.
        window_size (int): median window, in iterations, of smoothed scalars. Defaults to 20.
        kwargs: passed to ``torch.utils.tensorboard.SummaryWriter``.
    """

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs: Any) -> None:
        self._window_size = window_size
        self._writer_args = {"log_dir": log_dir, **kwargs}
        self._last_write = -1

    @cached_property
    def _writer(self):
        # Created on first use: importing tensorboard is slow and needless if nothing is written.
        from torch.utils.tensorboard import SummaryWriter

        kwargs = dict(self._writer_args)
        start_iter = getattr(get_event_storage(), "_start_iter", 0)
        if start_iter > 0:
            kwargs.setdefault("purge_step", start_iter)
        return SummaryWriter(**kwargs)

    def write(self) -> None:
        storage = get_event_storage()
        new_last_write = self._last_write
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                self._writer.add_scalar(k, v, itr)
                new_last_write = max(new_last_write, itr)
        self._last_write = new_last_write
        # The storage queues images and histograms for one consumer: this writer clears them.
        for img_name, img, step_num in storage._vis_data:
            img = torch.as_tensor(img).detach().cpu()
            # SummaryWriter reads float images as [0, 1]; rescale the [0, 255] ones.
            if img.is_floating_point() and img.max() > 1:
                img = img / 255.0
            self._writer.add_image(img_name, img, step_num)
        storage.clear_images()
        for params in storage._histograms:
            self._writer.add_histogram_raw(**params)
        storage.clear_histograms()

    def close(self) -> None:
        if "_writer" in self.__dict__:  # never create a writer just to close it
            self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Logs Detectron2's progress line through ``self.logger`` ("d2lite.utils.events"):
    `` eta: 0:01:02  iter: 19  total_loss: 1.2  ...  time: 0.2500  last_time: 0.2400
    data_time: 0.0100  last_data_time: 0.0090   lr: 0.001  max_mem: 812M``.

    Losses (names containing "loss") and ``[metric]`` scalars are medians over the last
    ``window_size`` iterations; ``time`` is the average since the start, ``data_time`` the
    average over the window; ``max_mem`` appears with CUDA only.

    Args:
        max_iter (int | None): the number of iterations, for the ETA. Defaults to None (no ETA).
        window_size (int): median window, in iterations. Defaults to 20.
    """

    def __init__(self, max_iter: int | None = None, window_size: int = 20) -> None:
        self.logger = logger
        self._max_iter = max_iter
        self._window_size = window_size
        self._last_write: tuple[int, float] | None = None  # (iteration, time) of the last write

    def _get_eta(self, storage: EventStorage) -> str | None:
        if self._max_iter is None:
            return ""
        iteration = storage.iter
        if "time" in storage.histories():
            eta_seconds = storage.history("time").median(1000) * (self._max_iter - iteration - 1)
            storage.put_scalar("eta_seconds", eta_seconds, smoothing_hint=False)
            return str(datetime.timedelta(seconds=int(eta_seconds)))
        # Without an IterationTimer, estimate from the wall time between two writes.
        eta = None
        if self._last_write is not None and iteration > self._last_write[0]:
            last_iter, last_time = self._last_write
            per_iter = (time.perf_counter() - last_time) / (iteration - last_iter)
            eta = str(datetime.timedelta(seconds=int(per_iter * (self._max_iter - iteration - 1))))
        self._last_write = (iteration, time.perf_counter())
        return eta

    def _medians(self, storage: EventStorage, selected: Callable[[str], bool]) -> str:
        return "  ".join(
            f"{k}: {v.median(storage.count_samples(k, self._window_size)):.4g}"
            for k, v in storage.histories().items()
            if selected(k)
        )

    def _times(self, storage: EventStorage) -> str:
        hists = storage.histories()
        text = ""
        if "time" in hists:
            text += f"time: {hists['time'].global_avg():.4f}  "
            text += f"last_time: {hists['time'].latest():.4f}  "
        if "data_time" in hists:
            window = storage.count_samples("data_time", self._window_size)
            text += f"data_time: {hists['data_time'].avg(window):.4f}  "
            text += f"last_data_time: {hists['data_time'].latest():.4f}  "
        return text

    def write(self) -> None:
        storage = get_event_storage()
        if storage.iter == self._max_iter:
            # Called after training ended: progress was already reported.
            return
        self.logger.info(self._format_line(storage))

    def _format_line(self, storage: EventStorage) -> str:
        """The progress line of the storage's current iteration (puts ``eta_seconds``)."""
        iteration = storage.iter
        hists = storage.histories()
        lr = f"{hists['lr'].latest():.5g}" if "lr" in hists else "N/A"
        eta = self._get_eta(storage)
        memory = ""
        if torch.cuda.is_available():
            memory = f"max_mem: {torch.cuda.max_memory_allocated() / 1024.0 / 1024.0:.0f}M"
        losses = self._medians(storage, lambda k: "loss" in k)
        non_losses = self._medians(storage, lambda k: "[metric]" in k)
        return (
            f" {f'eta: {eta}  ' if eta else ''}iter: {iteration}  {losses}  {non_losses}  "
            f"{self._times(storage)} lr: {lr}  {memory}"
        )
