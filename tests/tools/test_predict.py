"""Tests for tools/predict.py (d2lite.cli.predict)."""
from __future__ import annotations

import csv
import json
import os
import shutil

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


def _json_input(folder, names) -> str:
    """A COCO JSON in ``folder`` whose images have these ``file_name``s."""
    images = [{"id": i, "file_name": n, "width": 64, "height": 64} for i, n in enumerate(names)]
    path = folder / "images.json"
    path.write_text(json.dumps({"images": images, "categories": []}))
    return str(path)


def _predict_args(tiny_config, inputs, out) -> list[str]:
    args = ["--config-file", str(tiny_config), "--input", *inputs, "--output", str(out)]
    return args + ["MODEL.WEIGHTS", ""]


def test_dot_dot_names_stay_inside_output(trash_dir, tiny_config, tmp_path, load_tool):
    # "sub/../../victim.jpg" slipped past the old startswith("..") check: its picture went to
    # OUTPUT/sub/../../victim.jpg, which here is the input image itself.
    predict = load_tool("predict")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    victim = tmp_path / "victim.jpg"
    shutil.copy(trash_dir / "test/0000.jpg", victim)
    original = victim.read_bytes()
    out = data / "pred"
    json_path = _json_input(data, ["sub/../../victim.jpg", "sub/../../victim.jpg"])
    csv_path = predict.main(_predict_args(tiny_config, [json_path], out))
    assert victim.read_bytes() == original, "the input outside --output was overwritten"
    assert sorted(p.name for p in out.iterdir()) == ["submission.csv", "victim.jpg", "victim_1.jpg"]
    with open(csv_path, newline="") as f:
        ids = [r[1] for r in csv.reader(f)][1:]
    assert ids == ["sub/../../victim.jpg"] * 2, "the CSV keeps the dataset's file_name"


def test_absolute_names_keep_their_layout_inside_output(
    trash_dir, tiny_config, tmp_path, load_tool
):
    predict = load_tool("predict")
    image = str(trash_dir / "test/0001.jpg")
    out = tmp_path / "pred"
    predict.main(_predict_args(tiny_config, [_json_input(tmp_path, [image])], out))
    assert (out / image.lstrip("/")).is_file()


@pytest.mark.parametrize("link", ["test", "test/0000.jpg"])
def test_symlinks_leading_outside_are_refused_before_predicting(
    trash_dir, tiny_config, tmp_path, load_tool, monkeypatch, link
):
    predict = load_tool("predict")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "0000.jpg"
    victim.write_bytes(b"precious")
    out = tmp_path / "pred"
    (out / "test").mkdir(parents=True)
    if link == "test":
        (out / "test").rmdir()
        (out / "test").symlink_to(elsewhere)
    else:
        (out / link).symlink_to(victim)
    # Refused before the model is built (the shim's main is d2lite.cli.predict's).
    monkeypatch.setattr("d2lite.cli.predict.DefaultPredictor", None)
    with pytest.raises(ValueError, match="test/0000.jpg"):
        predict.main(_predict_args(tiny_config, [str(trash_dir / "test.json")], out))
    assert sorted(os.listdir(elsewhere)) == ["0000.jpg"] and victim.read_bytes() == b"precious"


def test_a_symlinked_default_csv_is_refused(trash_dir, tiny_config, tmp_path, load_tool):
    predict = load_tool("predict")
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    out = tmp_path / "pred"
    out.mkdir()
    (out / "submission.csv").symlink_to(victim)
    with pytest.raises(ValueError, match="submission.csv"):
        predict.main(_predict_args(tiny_config, [str(trash_dir / "test/0000.jpg")], out))
    assert victim.read_text() == "precious"


def test_a_failed_csv_write_keeps_the_previous_csv(
    trash_dir, tiny_config, tmp_path, load_tool, monkeypatch
):
    predict = load_tool("predict")
    out = tmp_path / "pred"
    out.mkdir()
    (out / "submission.csv").write_text("the previous, complete submission\n")
    real_writer = csv.writer

    class FailingWriter:
        def __init__(self, f):
            self._writer = real_writer(f)
            self.writerow = self._writer.writerow

        def writerows(self, rows):
            self._writer.writerow(next(iter(rows)))
            raise OSError("No space left on device")

    monkeypatch.setattr(csv, "writer", FailingWriter)
    with pytest.raises(OSError, match="No space left"):
        predict.main(_predict_args(tiny_config, [str(trash_dir / "test/0000.jpg")], out))
    assert (out / "submission.csv").read_text() == "the previous, complete submission\n"
    assert not [n for n in os.listdir(out) if n.endswith(".tmp.csv")], "no temporary file left"
