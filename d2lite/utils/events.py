"""Training events: ``EventStorage`` holds scalar histories; writers live in hooks.

Model code logs through :func:`event_storage_or_none` so it runs outside a trainer too.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import torch
from fvcore.common.history_buffer import HistoryBuffer

__all__ = ["EventStorage", "get_event_storage", "event_storage_or_none"]

_CURRENT_STORAGE_STACK: list["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """Returns the innermost active ``EventStorage``.

    Raises:
        AssertionError: outside a ``with EventStorage():`` block (as in Detectron2).
    """
    assert _CURRENT_STORAGE_STACK, "get_event_storage() has to be called inside 'with EventStorage(...)'!"
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

    def put_scalar(self, name: str, value: Any, smoothing_hint: bool = True, cur_iter: int | None = None) -> None:
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
            assert existing == smoothing_hint, f"Scalar {name} was put with a different smoothing_hint!"
        else:
            self._smoothing_hints[name] = smoothing_hint

    def put_scalars(self, *, smoothing_hint: bool = True, cur_iter: int | None = None, **kwargs) -> None:
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
            result[k] = (self._history[k].median(window_size) if self._smoothing_hints[k] else v, itr)
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
