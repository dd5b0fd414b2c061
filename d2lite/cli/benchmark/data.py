"""``d2lite benchmark --task data``: the training loader's images/s with 0 and 2 workers."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

from d2lite.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from d2lite.data.datasets import register_coco_instances
from d2lite.data.datasets.synthetic import TRASH_CLASSES, make_trash_dataset
from d2lite.modeling import build_model

from .common import load_cfg, run_in_child

__all__ = ["bench_data"]


def _register_synthetic(root: str, size: int, create: bool) -> str:
    if create:
        make_trash_dataset(root, num_train=64, num_val=0, num_test=0, image_size=size, seed=0)
    name = "benchmark_trash_train"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(Path(root) / "train.json"), root)
    return name


def _data_round(args: argparse.Namespace, root: str, workers: int, seed: int) -> dict:
    """One round with ``workers`` loader processes: the loader's images/s alone, then the
    seconds per training step of the config's model fed by that loader. ``seed`` fixes the
    sampler's image order, so that both worker counts of a round train on the same images
    (the step time depends on them: ROIAlign's cost grows with the proposals' sizes)."""
    np.random.seed(seed)  # the training sampler draws its shuffle seed from numpy

    torch.set_num_threads(args.threads)
    side = args.size[0]
    name = _register_synthetic(root, side, create=False)
    cfg = load_cfg(args)
    cfg.merge_from_list([
        "DATASETS.TRAIN", f"('{name}',)", "DATALOADER.NUM_WORKERS", str(workers),
        "SOLVER.IMS_PER_BATCH", str(args.batch), "INPUT.MIN_SIZE_TRAIN", f"({side},)",
        "INPUT.MAX_SIZE_TRAIN", str(side),
        "MODEL.ROI_HEADS.NUM_CLASSES", str(len(TRASH_CLASSES)),
    ])
    it = iter(build_detection_train_loader(cfg))
    for _ in range(2):
        next(it)
    start, n = time.perf_counter(), 0
    for _ in range(10 * max(1, args.iters)):
        n += len(next(it))
    rate = n / (time.perf_counter() - start)
    return {"rate": rate, "times": _train_from_loader(cfg, it, args)}


def bench_data(args: argparse.Namespace) -> dict[str, dict[int, float]]:
    """Images per second delivered by the training loader with 0 and 2 workers, and the
    seconds per training iteration of the config's model fed by each loader: rounds alternate
    0 and 2 workers, each in a fresh process, on the same images within a round and other
    images from round to round, and medians over all rounds are reported."""
    if args.size[0] != args.size[1]:
        raise SystemExit("--task data takes a square --size (the synthetic images are square)")
    root = tempfile.mkdtemp(prefix="d2lite_bench_")
    _register_synthetic(root, args.size[0], create=True)
    rates = {0: [], 2: []}
    times = {0: [], 2: []}
    for r in range(args.rounds):
        for workers in (0, 2):
            what = f"data benchmark with {workers} workers"
            out = run_in_child(what, _data_round, args, root, workers, r)
            rates[workers].append(out["rate"])
            times[workers] += out["times"]
    result = {"loader": {}, "train": {}}
    print(f"\ndata at {args.size[0]}x{args.size[1]}, batch {args.batch}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.iters} training iters (medians)")
    rows = []
    for workers in (0, 2):
        rate, step = statistics.median(rates[workers]), statistics.median(times[workers])
        result["loader"][workers], result["train"][workers] = rate, step
        consumed = args.batch / step
        rows.append((workers, rate, step, consumed, f"{rate / consumed:.0f}x"))
    headers = ("workers", "loader img/s", "train s/iter", "train img/s", "loader/train")
    print(tabulate(rows, headers=headers, tablefmt="plain", floatfmt=("", ".1f", ".3f", ".2f"),
                   colalign=("right",) * 5))
    print(f"training s/iter, 2 workers / 0 workers: {result['train'][2] / result['train'][0]:.3f}")
    return result


def _train_from_loader(cfg, data_iter, args: argparse.Namespace) -> list[float]:
    """Seconds of each timed training step (loading included) on batches from ``data_iter``."""
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for it in range(args.warmup + args.iters):
        start = time.perf_counter()
        losses = model(next(data_iter))
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        if it >= args.warmup:
            times.append(time.perf_counter() - start)
    return times
