"""Tests for tools/demo.py, run end to end on tiny data with a tiny schedule."""
from __future__ import annotations

import csv
import os

import pytest

from d2lite.data import DatasetCatalog

# The demo's own R18-FPN config, shrunk so the whole run takes a few seconds.
_FAST = [
    "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
    "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64",
    "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64",
    "MODEL.FPN.OUT_CHANNELS", "16", "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
]  # fmt: skip


def test_demo_generates_data_trains_evaluates_and_predicts(
    tmp_path, monkeypatch, load_tool, capsys
):
    monkeypatch.setenv("D2LITE_DATASETS", str(tmp_path / "datasets"))
    demo = load_tool("demo")
    out = tmp_path / "out"
    results = demo.main(
        ["--num-train", "4", "--num-val", "2", "--num-test", "2", "--num-pictures", "1"]
        + _FAST
        + ["OUTPUT_DIR", str(out)]
    )
    data = tmp_path / "datasets" / "trash"
    assert sorted(p.name for p in (data / "train").iterdir()) == [f"000{i}.jpg" for i in range(4)]
    assert set(results["bbox"]) >= {"AP", "AP50", "AP75"}
    assert (out / "model_final.pth").is_file()
    assert [p.name for p in (out / "pictures" / "val").iterdir()] == ["0000.jpg"]
    with open(out / "submission.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["PredictionString", "image_id"]
    assert [r[1] for r in rows[1:]] == ["test/0000.jpg", "test/0001.jpg"]
    printed = capsys.readouterr().out
    assert "d2lite demo finished" in printed and "bbox AP=" in printed
    assert str(out / "submission.csv") in printed
    assert "coco_trash_train" in DatasetCatalog.list()


def test_demo_reuses_an_existing_dataset(tmp_path, monkeypatch, load_tool):
    monkeypatch.setenv("D2LITE_DATASETS", str(tmp_path))
    demo = load_tool("demo")
    args = demo.get_parser().parse_args(["--num-train", "2", "--num-val", "1", "--num-test", "1"])
    first = demo.ensure_dataset(args)
    stamp = (tmp_path / "trash" / "train.json").stat().st_mtime_ns
    assert demo.ensure_dataset(args) == first == str(tmp_path / "trash")
    assert (tmp_path / "trash" / "train.json").stat().st_mtime_ns == stamp
    assert DatasetCatalog.get("coco_trash_val")[0]["file_name"].startswith(str(tmp_path))


def test_demo_refuses_data_registered_elsewhere_under_its_names(tmp_path, monkeypatch, load_tool):
    monkeypatch.setenv("D2LITE_DATASETS", str(tmp_path))
    demo = load_tool("demo")
    args = demo.get_parser().parse_args(["--num-train", "1", "--num-val", "1", "--num-test", "1"])
    from d2lite.data.datasets import register_coco_instances

    register_coco_instances("coco_trash_val", {}, "mine/val.json", "mine")
    with pytest.raises(AssertionError, match="mine/val.json"):
        demo.ensure_dataset(args)


def test_demo_refuses_a_symlinked_output_subfolder_before_training(
    tmp_path, monkeypatch, load_tool
):
    monkeypatch.setenv("D2LITE_DATASETS", str(tmp_path / "datasets"))
    demo = load_tool("demo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "pictures").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="pictures"):
        demo.main(_FAST + ["OUTPUT_DIR", str(out)])
    assert not (tmp_path / "datasets").exists(), "refused before writing data or training"
    assert os.listdir(elsewhere) == [] and sorted(os.listdir(out)) == ["pictures"]
