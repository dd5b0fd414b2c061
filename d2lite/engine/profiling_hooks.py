"""Hooks that measure the training run itself: the torch profilers and CUDA memory statistics.
Re-exported by :mod:`d2lite.engine.hooks`, where Detectron2 users look for them.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Callable

import torch

from d2lite.utils import comm

from .train_loop import HookBase

__all__ = ["TorchProfiler", "AutogradProfiler", "TorchMemoryStats"]

logger = logging.getLogger(__name__)

_MB = 1024.0 * 1024.0


class TorchProfiler(HookBase):
    """Profiles the iterations where ``enable_predicate(trainer)`` is True, with
    ``torch.profiler`` (shapes, memory, stacks and FLOPs recorded, as in Detectron2).

    Args:
        enable_predicate (Callable): e.g. ``lambda t: 10 < t.iter < 20``; called every step.
        output_dir (str): where traces are written.
        activities (list | None): ``torch.profiler.ProfilerActivity`` values. Defaults to None
            (torch's choice: CPU, plus CUDA when available).
        save_tensorboard (bool): write TensorBoard traces to ``output_dir/log`` rather than
            Chrome JSON traces to ``output_dir``. Defaults to True.
    """

    def __init__(
        self,
        enable_predicate: Callable,
        output_dir: str,
        *,
        activities=None,
        save_tensorboard: bool = True,
    ) -> None:
        self._enable_predicate = enable_predicate
        self._activities = activities
        self._output_dir = output_dir
        self._save_tensorboard = save_tensorboard
        self._profiler = None

    def _new_profiler(self) -> torch.profiler.profile:
        on_trace_ready = None
        if self._save_tensorboard:
            log_dir = os.path.join(
                self._output_dir, "log", f"profiler-tensorboard-iter{self.trainer.iter}"
            )
            on_trace_ready = torch.profiler.tensorboard_trace_handler(
                log_dir, f"worker{comm.get_rank()}"
            )
        return torch.profiler.profile(
            activities=self._activities,
            on_trace_ready=on_trace_ready,
            record_shapes=True,
            profile_memory=True,
            with_stack=True,
            with_flops=True,
        )

    def before_step(self) -> None:
        if not self._enable_predicate(self.trainer):
            self._profiler = None
            return
        self._profiler = self._new_profiler()
        self._profiler.__enter__()

    def after_step(self) -> None:
        if self._profiler is None:
            return
        self._profiler.__exit__(None, None, None)
        if not self._save_tensorboard:
            os.makedirs(self._output_dir, exist_ok=True)
            out_file = os.path.join(
                self._output_dir, f"profiler-trace-iter{self.trainer.iter}.json"
            )
            self._profiler.export_chrome_trace(out_file)


class AutogradProfiler(TorchProfiler):
    """The older ``torch.autograd.profiler`` version of :class:`TorchProfiler` (deprecated, as
    in Detectron2): writes a Chrome trace ``profiler-trace-iter{i}.json`` per profiled step.

    Args:
        enable_predicate (Callable): e.g. ``lambda t: t.iter == 10``.
        output_dir (str): where traces are written.
        use_cuda (bool): also profile CUDA kernels, when CUDA is available. Defaults to True.
    """

    def __init__(self, enable_predicate: Callable, output_dir: str, *, use_cuda: bool = True):
        warnings.warn("AutogradProfiler has been deprecated in favor of TorchProfiler.")
        super().__init__(enable_predicate, output_dir, save_tensorboard=False)
        self._use_cuda = use_cuda

    def _new_profiler(self) -> torch.autograd.profiler.profile:
        # torch dropped the use_cuda argument; on a machine without CUDA, profile the CPU only.
        device = "cuda" if self._use_cuda and torch.cuda.is_available() else None
        return torch.autograd.profiler.profile(use_device=device)


class TorchMemoryStats(HookBase):
    """Logs CUDA memory statistics every ``period`` iterations and after the last one, then
    resets the peak counters; a no-op without CUDA.

    Args:
        period (int): iterations between two reports. Defaults to 20.
        max_runs (int): stop after this many reports; the last one adds
            ``torch.cuda.memory_summary()``. Defaults to 10.
    """

    def __init__(self, period: int = 20, max_runs: int = 10) -> None:
        self._period = period
        self._max_runs = max_runs
        self._runs = 0

    def after_step(self) -> None:
        due = self.is_due(self._period)
        if self._runs >= self._max_runs or not due or not torch.cuda.is_available():
            return
        mem = {
            "max_reserved_mem": torch.cuda.max_memory_reserved(),
            "reserved_mem": torch.cuda.memory_reserved(),
            "max_allocated_mem": torch.cuda.max_memory_allocated(),
            "allocated_mem": torch.cuda.memory_allocated(),
        }
        sizes = "".join(f"  {k}: {v / _MB:.0f}MB" for k, v in mem.items())
        logger.info(f" iter: {self.trainer.iter}{sizes} ")
        self._runs += 1
        if self._runs == self._max_runs:
            logger.info("\n%s", torch.cuda.memory_summary())
        torch.cuda.reset_peak_memory_stats()
