"""Training events: ``EventStorage`` holds scalar histories; writers live in hooks.

Model code logs through :func:`event_storage_or_none` so it runs outside a trainer too.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import torch
from fvcore.common.history_buffer import HistoryBuffer

__all__ = [
    "EventStorage",
    "get_event_storage",
    "event_storage_or_none",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "CommonMetricPrinter",
]

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


def event_storage_or_none() -> "EventStorage | None":
    """Returns the innermost active ``EventStorage``, or None outside one."""
    return _CURRENT_STORAGE_STACK[-1] if _CURRENT_STORAGE_STACK else None


class EventStorage:
    """Scalar histories, images and a current iteration, shared by a trainer and its hooks.

    Args:
        start_iter (int): the iteration the storage starts at. Defaults to 0.
    """

    def __init__(self, start_iter: int = 0) -> None:
        self._history: dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest_scalars: dict[str, tuple[float, int]] = {}
        self._iter = start_iter
        self._current_prefix = ""
        self._vis_data: list[tuple[str, Any, int]] = []

    def put_scalar(
        self, name: str, value: Any, smoothing_hint: bool = True, cur_iter: int | None = None
    ) -> None:
        """Adds ``value`` to the history of ``name``.

        Args:
            smoothing_hint (bool): whether writers should report a median over a window
                rather than the latest value. Defaults to True.
            cur_iter (int | None): the iteration to record; defaults to the storage's.
        """
        name = self._current_prefix + name
        cur_iter = self._iter if cur_iter is None else cur_iter
        value = float(value.detach().item() if isinstance(value, torch.Tensor) else value)
        self._history[name].update(value, cur_iter)
        self._latest_scalars[name] = (value, cur_iter)
        existing = self._smoothing_hints.get(name)
        if existing is not None:
            assert (
                existing == smoothing_hint
            ), f"Scalar {name} was put with a different smoothing_hint!"
        else:
            self._smoothing_hints[name] = smoothing_hint

    def put_scalars(
        self, *, smoothing_hint: bool = True, cur_iter: int | None = None, **kwargs
    ) -> None:
        """Puts several scalars at once: ``put_scalars(loss_cls=0.3, lr=0.01)``."""
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint=smoothing_hint, cur_iter=cur_iter)

    def put_image(self, img_name: str, img_tensor: torch.Tensor) -> None:
        """Queues a CHW image in [0, 1] or [0, 255] for the TensorBoard writer."""
        self._vis_data.append((img_name, img_tensor, self._iter))

    def clear_images(self) -> None:
        self._vis_data = []

    def history(self, name: str) -> HistoryBuffer:
        """Returns the ``HistoryBuffer`` of ``name``.

        Raises:
            KeyError: naming the scalar and those that exist.
        """
        if name not in self._history:
            raise KeyError(f"No history metric available for {name}! Have: {sorted(self._history)}")
        return self._history[name]

    def histories(self) -> dict[str, HistoryBuffer]:
        return self._history

    def latest(self) -> dict[str, tuple[float, int]]:
        """Returns ``{name: (latest value, iteration it was put at)}``."""
        return self._latest_scalars

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """Like :meth:`latest`, with smoothed scalars replaced by their median over a window."""
        result = {}
        for k, (v, itr) in self._latest_scalars.items():
            result[k] = (
                self._history[k].median(window_size) if self._smoothing_hints[k] else v,
                itr,
            )
        return result

    def smoothing_hints(self) -> dict[str, bool]:
        return self._smoothing_hints

    def step(self) -> None:
        """Advances the iteration counter by one."""
        self._iter += 1

    @property
    def iter(self) -> int:
        return self._iter

    @iter.setter
    def iter(self, val: int) -> None:
        self._iter = int(val)

    @property
    def iteration(self) -> int:
        return self._iter

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self
        _CURRENT_STORAGE_STACK.pop()

    @contextmanager
    def name_scope(self, name: str):
        """Prefixes every scalar put inside the block with ``name/``."""
        old_prefix = self._current_prefix
        self._current_prefix = name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix


class EventWriter:
    """Base of the writers that ``PeriodicWriter`` calls; they read the current storage."""

    def write(self) -> None:
        raise NotImplementedError  # abstract: each writer implements it

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Appends one JSON object per iteration, ``{"iteration": i, "loss_cls": ...}``, to a file.

    Each write covers the scalars put since the previous one, grouped by the iteration they were
    put at (one line per iteration, in order). A scalar put several times between two writes
    appears once, with its latest value (or its median, if it has a smoothing hint).

    Args:
        json_file (str): path of the file, opened for appending.
        window_size (int): median window of scalars with a smoothing hint. Defaults to 20.
    """

    def __init__(self, json_file: str, window_size: int = 20) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(json_file)), exist_ok=True)
        self._file_handle = open(json_file, "a")
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        to_save: dict[int, dict] = defaultdict(dict)
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                to_save[itr][k] = v
        if to_save:
            self._last_write = max(to_save)
        for itr in sorted(to_save):
            self._file_handle.write(json.dumps({"iteration": itr, **to_save[itr]}, sort_keys=True))
            self._file_handle.write("\n")
        self._file_handle.flush()
        # fsync so a killed run leaves complete lines for the iterations it reported.
        os.fsync(self._file_handle.fileno())

    def close(self) -> None:
        self._file_handle.close()


class TensorboardXWriter(EventWriter):
    """Writes new scalars and queued images to TensorBoard event files.

    Args:
        log_dir (str): directory of the event files.
        window_size (int): median window of scalars with a smoothing hint. Defaults to 20.
        kwargs: passed to ``torch.utils.tensorboard.SummaryWriter``.
    """

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs) -> None:
        self._window_size = window_size
        self._writer_args = {"log_dir": log_dir, **kwargs}
        self._writer = None
        self._last_write = -1

    @property
    def writer(self):
        # Created on first use: importing tensorboard is slow and needless if nothing is written.
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(**self._writer_args)
        return self._writer

    def write(self) -> None:
        storage = get_event_storage()
        new_last_write = self._last_write
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                self.writer.add_scalar(k, v, itr)
                new_last_write = max(new_last_write, itr)
        self._last_write = new_last_write
        for img_name, img, step_num in storage._vis_data:
            img = img.detach().cpu()
            self.writer.add_image(img_name, img / 255.0 if img.max() > 1 else img, step_num)
        storage.clear_images()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Logs ``eta  iter  losses  time  data_time  lr  max_mem`` to the terminal.

    Args:
        max_iter (int | None): the last iteration, for the ETA. Defaults to None (no ETA).
        window_size (int): median window of the losses and times. Defaults to 20.
    """

    def __init__(self, max_iter: int | None = None, window_size: int = 20) -> None:
        self.logger = logging.getLogger("d2lite.utils.events")
        self._max_iter = max_iter
        self._window_size = window_size
        self._last_write: tuple[int, float] | None = None

    def _get_eta(self, storage: EventStorage) -> str:
        if self._max_iter is None:
            return ""
        iteration = storage.iter
        if "time" in storage.histories():
            eta_seconds = storage.history("time").median(1000) * (self._max_iter - iteration - 1)
            storage.put_scalar("eta_seconds", eta_seconds, smoothing_hint=False)
            return f"eta: {datetime.timedelta(seconds=int(eta_seconds))}  "
        # Without an IterationTimer, estimate from the wall time between two writes.
        eta = ""
        if self._last_write is not None and iteration > self._last_write[0]:
            elapsed = time.perf_counter() - self._last_write[1]
            eta_seconds = elapsed / (iteration - self._last_write[0]) * (self._max_iter - iteration - 1)
            eta = f"eta: {datetime.timedelta(seconds=int(eta_seconds))}  "
        self._last_write = (iteration, time.perf_counter())
        return eta

    def _get(self, storage: EventStorage, name: str, fmt: str, latest: bool = False) -> str:
        if name not in storage.histories():
            return ""
        hist = storage.history(name)
        value = hist.latest() if latest else hist.median(self._window_size)
        return f"{name}: {value:{fmt}}  "

    def write(self) -> None:
        storage = get_event_storage()
        iteration = storage.iter
        if iteration == self._max_iter:
            # Called after training ended: progress was already reported.
            return
        losses = "  ".join(
            f"{k}: {v.median(self._window_size):.4g}"
            for k, v in storage.histories().items()
            if "loss" in k
        )
        max_mem = ""
        if torch.cuda.is_available():
            max_mem = f"max_mem: {torch.cuda.max_memory_allocated() / 1024.0 / 1024.0:.0f}M"
        self.logger.info(
            f" {self._get_eta(storage)}iter: {iteration}  {losses}  "
            + self._get(storage, "time", ".4f")
            + self._get(storage, "time", ".4f", latest=True).replace("time", "last_time")
            + self._get(storage, "data_time", ".4f")
            + self._get(storage, "data_time", ".4f", latest=True).replace(
                "data_time", "last_data_time"
            )
            + self._get(storage, "lr", ".5g", latest=True)
            + max_mem
        )
