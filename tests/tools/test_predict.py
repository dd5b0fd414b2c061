"""Tests for tools/predict.py."""
from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from d2lite.structures import Boxes, Instances


def test_collect_images_from_dirs_globs_files_and_json(trash_dir, load_tool):
    predict = load_tool("predict")
    from_dir = predict.collect_images([str(trash_dir / "test")], None)
    assert [i for _, i in from_dir] == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]
    from_glob = predict.collect_images([str(trash_dir / "val" / "*.jpg")], None)
    assert [i for _, i in from_glob] == ["val/0000.jpg", "val/0001.jpg", "val/0002.jpg"]
    from_json = predict.collect_images([str(trash_dir / "test.json")], None)
    expected = [(str(trash_dir / f"test/000{i}.jpg"), f"test/000{i}.jpg") for i in range(3)]
    assert from_json == expected
    one = predict.collect_images([str(trash_dir / "val/0001.jpg")], str(trash_dir / "val"))
    assert one == [(str(trash_dir / "val/0001.jpg"), "0001.jpg")]
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        predict.collect_images([str(trash_dir / "nothing_here*.png")], None)


def test_prediction_string_format(load_tool):
    predict = load_tool("predict")
    inst = Instances((50, 60))
    inst.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 30.5, 40.25], [0.0, 0.0, 5.0, 5.0]]))
    inst.scores = torch.tensor([0.9, 0.125])
    inst.pred_classes = torch.tensor([3, 0])
    text = predict.prediction_string(inst)
    assert text == "3 0.9000 1.00 2.00 30.50 40.25 0 0.1250 0.00 0.00 5.00 5.00"
    assert predict.prediction_string(inst[:0]) == ""


def test_main_writes_pictures_and_submission(trash_dir, tiny_config, tmp_path, load_tool):
    predict = load_tool("predict")
    out = tmp_path / "pred"
    csv_path = predict.main(
        ["--config-file", str(tiny_config), "--input", str(trash_dir / "test.json")]
        + ["--output", str(out), "--confidence-threshold", "0.0", "MODEL.WEIGHTS", ""]
    )
    assert csv_path == str(out / "submission.csv")
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["PredictionString", "image_id"]
    assert [r[1] for r in rows[1:]] == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]
    for pred, _ in rows[1:]:
        values = pred.split()
        assert len(values) % 6 == 0
        for k in range(0, len(values), 6):
            assert 0 <= int(values[k]) < 10 and 0.0 <= float(values[k + 1]) <= 1.0
    for i in range(3):
        with Image.open(out / f"test/000{i}.jpg") as img:
            assert img.size == (64, 64)
