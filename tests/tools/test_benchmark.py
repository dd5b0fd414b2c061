"""tools/benchmark.py on the tiny model: it runs, times, counts and reports."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest


def test_benchmark_eval_on_tiny_model(repo):
    cmd = [sys.executable, "tools/benchmark.py", "--config-file", "model_zoo/tiny/faster_rcnn_tiny.yaml",
           "--task", "eval", "--size", "64x96", "--iters", "2", "--rounds", "1", "--threads", "1"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row = next(line for line in lines if line.startswith("d2lite"))
    seconds, peak_mb, gflops, proposals = (float(v) for v in row.split()[1:5])
    assert seconds > 0 and peak_mb > 0 and gflops > 0
    assert 0 < proposals <= 50  # POST_NMS_TOPK_TEST of the tiny config
    assert "matmul peak" in out.stdout
    assert "eval at 64x96" in out.stdout


def test_benchmark_train_on_tiny_model(repo):
    cmd = [sys.executable, "tools/benchmark.py", "--config-file", "model_zoo/tiny/faster_rcnn_tiny.yaml",
           "--task", "train", "--size", "64", "--batch", "2", "--iters", "2", "--rounds", "1"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "s/iter" in out.stdout and any(l.startswith("d2lite") for l in out.stdout.splitlines())


def test_benchmark_data_loader(repo):
    cmd = [sys.executable, "tools/benchmark.py", "--config-file", "model_zoo/tiny/faster_rcnn_tiny.yaml",
           "--task", "data", "--size", "64", "--batch", "2", "--iters", "1", "--rounds", "1"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {int(line.split()[0]): line.split()[1:] for line in out.stdout.splitlines()
            if line.split() and line.split()[0] in ("0", "2")}
    assert set(rows) == {0, 2}
    for loader_rate, train_seconds, train_rate, ratio in rows.values():
        assert float(loader_rate) > 0 and float(train_seconds) > 0 and float(train_rate) > 0
        assert ratio.endswith("x")
    assert "2 workers / 0 workers" in out.stdout


def test_size_is_square_or_height_by_width(load_tool):
    benchmark = load_tool("benchmark")
    assert benchmark._image_size("512") == (512, 512)
    assert benchmark._image_size("800x1333") == (800, 1333)
    for bad in ("0", "800x", "axb", "1x2x3"):
        with pytest.raises(argparse.ArgumentTypeError, match="HxW"):
            benchmark._image_size(bad)


def _detections(boxes, classes):
    from d2lite.structures import Boxes, Instances

    inst = Instances((100, 100), pred_boxes=Boxes(boxes), pred_classes=classes)
    return [{"instances": inst}]


def test_compare_detections_pairs_boxes_of_a_class_in_any_order():
    import torch

    from d2lite.cli.benchmark.model import compare_detections

    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [5, 5, 20, 20]])
    classes = torch.tensor([1, 1, 2])
    ref = _detections(boxes, classes)
    # Two tied detections of class 1 in the other order, and a small shift.
    swapped = _detections(boxes[[1, 0, 2]] + torch.tensor([0, 0, 0, 1e-4]), classes[[1, 0, 2]])
    assert compare_detections(ref, swapped) == pytest.approx(1e-4, abs=1e-6)
    # A box that moved is found, whatever the order.
    shift = torch.tensor([[0.0, 0, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]])
    moved = _detections(boxes[[1, 0, 2]] + shift, classes[[1, 0, 2]])
    assert compare_detections(ref, moved) == pytest.approx(3.0)
    # Other classes, or another number of detections, are not the same detections.
    assert compare_detections(ref, _detections(boxes, torch.tensor([1, 2, 2]))) == float("inf")
    assert compare_detections(ref, _detections(boxes[:2], classes[:2])) == float("inf")
