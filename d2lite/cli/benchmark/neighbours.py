"""Other CPU work beside a benchmark: the loads users' machines carry while they train.

Kinds (``--neighbour KIND[:NICE]``, repeatable):
    busy    one thread spinning, as ``yes > /dev/null``
    torch   a torch matmul loop on ``--threads`` threads, with OpenMP's default (spinning)
            waiting, as an unrelated torch job would run
    train   a d2lite training job: the Trash-Demo R18-FPN on synthetic 256 px batches of 2

Each neighbour is a separate process, started at the given nice level, that stops by itself
after ``seconds`` and is stopped by the benchmark when the loaded measurements end. The
benchmark waits until every neighbour runs its workload (a training job has built its model)
before it measures.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

__all__ = ["KINDS", "neighbours", "parse_neighbour"]

KINDS = ("busy", "torch", "train")
_READY = "ready"
_START_TIMEOUT_S = 300.0
_TRAIN_CONFIG = "Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml"


def parse_neighbour(text: str) -> tuple[str, int]:
    """'train:10' -> ("train", 10); 'busy' -> ("busy", 0).

    Raises:
        ValueError: for an unknown kind or a nice level that is not a number from 0 to 19.
    """
    kind, _, nice = text.partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown neighbour {kind!r}; expected one of {', '.join(KINDS)}")
    try:
        level = int(nice or 0)
    except ValueError:
        level = -1
    if not 0 <= level <= 19:
        raise ValueError(f"neighbour nice level must be 0-19, got {nice!r} in {text!r}")
    return kind, level


def _child_env(kind: str) -> dict[str, str]:
    env = dict(os.environ)
    if kind == "torch":
        # An unrelated torch job: OpenMP's own waiting, not d2lite's passive default.
        env.pop("OMP_WAIT_POLICY", None)
        env["D2LITE_OMP_PASSIVE"] = "0"
    return env


@contextlib.contextmanager
def neighbours(specs: list[tuple[str, int]], seconds: float, threads: int) -> Iterator[list]:
    """Runs the neighbours ``specs`` (kind, nice) for at most ``seconds``; yields their
    processes once all of them are running their workload, and stops them on exit."""
    procs = []
    try:
        for kind, nice in specs:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", __name__, kind, str(seconds), str(threads)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    env=_child_env(kind),
                    preexec_fn=(lambda n=nice: os.nice(n)) if nice else None,
                )
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        for (kind, _), proc in zip(specs, procs):
            line = proc.stdout.readline().strip()
            if line != _READY or time.monotonic() > deadline:
                raise RuntimeError(f"neighbour {kind!r} did not start (exit code {proc.poll()})")
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _busy(end: float) -> None:
    print(_READY, flush=True)
    while time.monotonic() < end:
        pass


def _torch_loop(end: float, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    print(_READY, flush=True)
    while time.monotonic() < end:
        a @ b


def _train(end: float, threads: int) -> None:
    import torch

    from d2lite import model_zoo
    from d2lite.config import get_cfg

    from .model import build_d2lite, synthetic_batch

    torch.set_num_threads(threads)
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(_TRAIN_CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    data = synthetic_batch(2, (256, 256), cfg.MODEL.ROI_HEADS.NUM_CLASSES, seed=0)
    model, batch, run, _ = build_d2lite(cfg, *data, train=True)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        loss = sum(run(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # the first step builds what later ones reuse: ready after it
    print(_READY, flush=True)
    while time.monotonic() < end:
        step()


def _main(argv: list[str]) -> None:
    kind, seconds, threads = argv[0], float(argv[1]), int(argv[2])
    end = time.monotonic() + seconds
    if kind == "busy":
        _busy(end)
    elif kind == "torch":
        _torch_loop(end, threads)
    else:
        _train(end, threads)


if __name__ == "__main__":
    _main(sys.argv[1:])
