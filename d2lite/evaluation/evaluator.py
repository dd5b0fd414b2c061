"""Running a model over a dataset and feeding its outputs to evaluators.

``inference_on_dataset`` is the only loop: it puts the model in eval mode, runs it under
``torch.inference_mode()``, hands every ``(inputs, outputs)`` batch to a
:class:`DatasetEvaluator`, and reports progress and timing.
"""
from __future__ import annotations

import datetime
import logging
import sys
import time
from collections import OrderedDict, abc
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from d2lite.utils import comm

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_on_dataset", "inference_context"]

logger = logging.getLogger(__name__)

# Progress lines are throttled to one every this many seconds when stderr is not a terminal.
_LOG_PERIOD_S = 5.0
# Iterations slower than this report progress even during warm-up: the user waits anyway.
_SLOW_ITER_S = 5.0


class DatasetEvaluator:
    """Base class of evaluators: accumulate ``(inputs, outputs)`` pairs, then compute metrics.

    ``inference_on_dataset`` calls :meth:`reset` once, :meth:`process` on every batch and
    :meth:`evaluate` at the end.
    """

    def reset(self) -> None:
        """Prepares for a new round of evaluation."""

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Accumulates one batch.

        Args:
            inputs (list[dict]): the model's inputs (dataset dicts with ``image_id`` etc.).
            outputs (list[dict]): the model's outputs, one per input.
        """

    def evaluate(self) -> dict | None:
        """Computes metrics from everything processed since :meth:`reset`.

        Returns:
            dict | None: ``{task: {metric: float}}``; None (or nothing) on non-main processes.
        """


class DatasetEvaluators(DatasetEvaluator):
    """Wraps several evaluators and merges their results.

    Args:
        evaluators (list[DatasetEvaluator]): the evaluators, called in order.
    """

    def __init__(self, evaluators: list[DatasetEvaluator]) -> None:
        super().__init__()
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self) -> OrderedDict:
        """Returns the union of every evaluator's results.

        Raises:
            KeyError: when two evaluators report the same top-level key.
        """
        results: OrderedDict = OrderedDict()
        for evaluator in self._evaluators:
            result = evaluator.evaluate()
            if not comm.is_main_process() or result is None:
                continue
            for key, value in result.items():
                if key in results:
                    raise KeyError(
                        f"Different evaluators produce results with the same key {key!r} "
                        f"({type(evaluator).__name__} and an earlier one)"
                    )
                results[key] = value
        return results


@contextmanager
def inference_context(model: nn.Module) -> Iterator[None]:
    """Puts ``model`` in eval mode for the block and restores its previous mode afterwards."""
    training_mode = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training_mode)


class _Timer:
    """Accumulates data-loading, inference and evaluation time after the warm-up iterations."""

    def __init__(self, total: int | None, num_warmup: int) -> None:
        self.total = total
        self.num_warmup = num_warmup
        self._last_log = time.perf_counter()
        self.restart()

    def restart(self) -> None:
        self.start = time.perf_counter()
        self.data = self.compute = self.eval = 0.0

    def progress_line(self, idx: int) -> str | None:
        """Returns an "Inference done i/N ... ETA" line when one is due, else None."""
        iters = idx + 1 - self.num_warmup * int(idx >= self.num_warmup)
        data_s, compute_s, eval_s = self.data / iters, self.compute / iters, self.eval / iters
        total_s = (time.perf_counter() - self.start) / iters
        warmed_up = idx >= self.num_warmup * 2 or compute_s > _SLOW_ITER_S
        if not warmed_up or time.perf_counter() - self._last_log < _LOG_PERIOD_S:
            return None
        self._last_log = time.perf_counter()
        done = f"{idx + 1}/{self.total}" if self.total is not None else f"{idx + 1}"
        eta = ""
        if self.total is not None:
            eta = f" ETA={datetime.timedelta(seconds=int(total_s * (self.total - idx - 1)))}"
        return (
            f"Inference done {done}. Dataloading: {data_s:.4f} s/iter. "
            f"Inference: {compute_s:.4f} s/iter. Eval: {eval_s:.4f} s/iter. "
            f"Total: {total_s:.4f} s/iter.{eta}"
        )


def _loader_length(data_loader: Iterable) -> int | None:
    try:
        return len(data_loader)
    except TypeError:
        return None


def _synchronize_accelerator() -> None:
    # Kernels run asynchronously on GPUs; without a sync the timing would only measure launches.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _log_final_timing(timer: _Timer, num_batches: int) -> None:
    num_devices = comm.get_world_size()
    timed = max(num_batches - timer.num_warmup, 1)
    total_time = time.perf_counter() - timer.start
    logger.info(
        f"Total inference time: {datetime.timedelta(seconds=total_time)} "
        f"({total_time / timed:.6f} s / iter per device, on {num_devices} devices)"
    )
    logger.info(
        f"Total inference pure compute time: {datetime.timedelta(seconds=int(timer.compute))} "
        f"({timer.compute / timed:.6f} s / iter per device, on {num_devices} devices)"
    )


def inference_on_dataset(
    model: Callable,
    data_loader: Iterable[list[dict]],
    evaluator: DatasetEvaluator | list[DatasetEvaluator] | None,
    callbacks: dict[str, Callable[[], None]] | None = None,
) -> dict:
    """Runs ``model`` on every batch of ``data_loader`` and evaluates the outputs.

    The model is put in eval mode for the duration (its mode is restored afterwards) and run
    under ``torch.inference_mode()``. Progress is a tqdm bar when stderr is a terminal and
    otherwise a log line every ~5 s; the total and per-iteration times, excluding the first
    ``min(5, len - 1)`` warm-up iterations, are logged at the end.

    Args:
        model (Callable): an ``nn.Module`` or any callable taking a batch (``list[dict]``).
        data_loader (Iterable[list[dict]]): batches of dataset dicts; a plain list works.
        evaluator (DatasetEvaluator | list[DatasetEvaluator] | None): None evaluates nothing.
        callbacks (dict[str, Callable] | None): optional ``on_start``, ``before_inference``,
            ``after_inference`` and ``on_end`` functions. Defaults to None.

    Returns:
        dict: ``evaluator.evaluate()``, or ``{}`` when it returns None.
    """
    total = _loader_length(data_loader)
    logger.info(f"Start inference on {'an unknown number of' if total is None else total} batches")
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif isinstance(evaluator, abc.MutableSequence):
        evaluator = DatasetEvaluators(evaluator)
    callbacks = callbacks or {}
    evaluator.reset()
    timer = _Timer(total, num_warmup=max(min(5, (total or 6) - 1), 0))
    with ExitStack() as stack:
        if isinstance(model, nn.Module):
            stack.enter_context(inference_context(model))
        stack.enter_context(torch.inference_mode())
        num_batches = _run_loop(model, data_loader, evaluator, callbacks, timer)
    _log_final_timing(timer, num_batches)
    results = evaluator.evaluate()
    return {} if results is None else results


def _run_loop(
    model: Callable,
    data_loader: Iterable[list[dict]],
    evaluator: DatasetEvaluator,
    callbacks: dict[str, Callable[[], None]],
    timer: _Timer,
) -> int:
    """The body of :func:`inference_on_dataset`; returns the number of batches seen."""
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=timer.total, desc="Inference", unit="batch", leave=False)
    callbacks.get("on_start", lambda: None)()
    num_batches = 0
    start_data = time.perf_counter()
    for idx, inputs in enumerate(data_loader):
        timer.data += time.perf_counter() - start_data
        if idx == timer.num_warmup:
            timer.restart()
        start_compute = time.perf_counter()
        callbacks.get("before_inference", lambda: None)()
        outputs = model(inputs)
        callbacks.get("after_inference", lambda: None)()
        _synchronize_accelerator()
        timer.compute += time.perf_counter() - start_compute
        start_eval = time.perf_counter()
        evaluator.process(inputs, outputs)
        timer.eval += time.perf_counter() - start_eval
        num_batches = idx + 1
        if progress is not None:
            progress.update(1)
        else:
            line = timer.progress_line(idx)
            if line is not None:
                logger.info(line)
        start_data = time.perf_counter()
    callbacks.get("on_end", lambda: None)()
    if progress is not None:
        progress.close()
    return num_batches
