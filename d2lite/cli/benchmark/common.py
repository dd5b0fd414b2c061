"""What the benchmarks share: the config, and running a measurement in a fresh process."""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

from d2lite.config import CfgNode

from ..common import load_config

IMAGENET_STD_BGR = [57.375, 57.120, 58.395]


def load_cfg(args: argparse.Namespace) -> CfgNode:
    """The benchmarked config (not frozen): ``--config-file`` with random init, ImageNet std,
    then ``opts``, set up as every tool does (:func:`d2lite.cli.common.load_config`)."""
    # ImageNet std: random-init models then see standardised inputs, as torchvision's do.
    overrides = [
        "MODEL.DEVICE", args.device, "MODEL.WEIGHTS", "", "MODEL.PIXEL_STD", str(IMAGENET_STD_BGR)
    ]
    # The benchmarks bring their own data, so missing dataset files only warn.
    return load_config(
        args.config_file, overrides + list(args.opts), freeze=False, missing_data_ok=True
    )


def _child(fn, fn_args, queue) -> None:
    try:
        queue.put(fn(*fn_args))
    except Exception as e:  # reported by the parent, which names the measurement
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_in_child(what: str, fn, *fn_args, env: dict[str, str | None] | None = None) -> dict:
    """Runs ``fn(*fn_args)`` in a fresh spawned process (so its peak memory and thread state
    are its own) and returns the dict it returned. ``env`` changes the child's environment
    (None removes a variable)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, fn_args, queue))
    saved = {k: os.environ.get(k) for k in env or {}}
    try:
        _set_environ(env or {})
        proc.start()  # the child's environment is copied here
    finally:
        _set_environ(saved)
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"{what} failed: {result['error']}")
    return result


def _set_environ(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def timed(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
