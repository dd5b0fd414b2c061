"""Runs examples/trash_baseline.py (the course-style user script) end to end on tiny data."""
from __future__ import annotations

import csv
import runpy
import sys


def test_baseline_trains_evaluates_and_writes_submission(trash_dir, repo, tmp_path, monkeypatch):
    out = tmp_path / "out"
    argv = [
        "trash_baseline.py", "--data-dir", str(trash_dir), "--output-dir", str(out),
        "--config-file", str(repo / "model_zoo/tiny/faster_rcnn_tiny.yaml"), "--weights", "",
        "--max-iter", "3", "--num-workers", "0",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    # The coco_trash_* names it registers are dropped after the test (tests/conftest.py).
    runpy.run_path(str(repo / "examples" / "trash_baseline.py"), run_name="__main__")
    assert (out / "model_final.pth").is_file()
    assert (out / "output_eval" / "coco_instances_results.json").is_file()
    with open(out / "submission_det.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["PredictionString", "image_id"]
    assert [r[1] for r in rows[1:]] == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]
