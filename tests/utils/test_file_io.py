"""Tests for the output-path helpers of d2lite/utils/file_io.py."""
from __future__ import annotations

import logging
import os
import uuid

import numpy as np
import pytest

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.evaluation import COCOEvaluator
from d2lite.extras.plots import save_confusion_matrix_csv
from d2lite.structures import BoxMode
from d2lite.utils.file_io import atomic_output, safe_output_path


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_a_name_inside_keeps_its_layout(out, caplog):
    with caplog.at_level(logging.WARNING):
        assert safe_output_path(str(out), "test/0000.jpg") == str(out / "test" / "0000.jpg")
        assert safe_output_path(str(out), "./a//b/../c.jpg") == str(out / "a" / "c.jpg")
    assert caplog.records == []


@pytest.mark.parametrize(
    "name, kept",
    [
        ("../../victim.jpg", "victim.jpg"),
        ("sub/../../victim.jpg", "victim.jpg"),
        ("a/../../../b/victim.jpg", "b/victim.jpg"),
        ("/tmp/x/victim.jpg", "tmp/x/victim.jpg"),
    ],
)
def test_names_climbing_out_are_confined_with_a_warning(out, caplog, name, kept):
    with caplog.at_level(logging.WARNING, logger="d2lite.utils.file_io"):
        path = safe_output_path(str(out), name, source="data.json")
    assert path == os.path.join(str(out), *kept.split("/"))
    assert name in caplog.text and "data.json" in caplog.text


@pytest.mark.parametrize("name", ["", ".", "..", "/", "a/.."])
def test_a_name_without_a_file_is_refused(out, name):
    with pytest.raises(ValueError, match="names no file"):
        safe_output_path(str(out), name)


def test_a_symlinked_subfolder_pointing_outside_is_refused(out, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "test").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="test/0000.jpg.*symlink"):
        safe_output_path(str(out), "test/0000.jpg")


def test_a_symlink_at_the_destination_pointing_outside_is_refused(out, tmp_path):
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"precious")
    (out / "0000.jpg").symlink_to(victim)
    with pytest.raises(ValueError, match="0000.jpg"):
        safe_output_path(str(out), "0000.jpg")
    (out / "dangling.jpg").symlink_to(tmp_path / "not_yet.jpg")
    with pytest.raises(ValueError, match="dangling.jpg"):
        safe_output_path(str(out), "dangling.jpg")


def test_symlinks_that_stay_inside_are_allowed(out, tmp_path):
    (out / "real").mkdir()
    (out / "alias").symlink_to(out / "real")
    assert safe_output_path(str(out), "alias/x.jpg") == str(out / "alias" / "x.jpg")
    # The output folder itself may be a symlink, e.g. to a bigger disk.
    link = tmp_path / "link_to_out"
    link.symlink_to(out)
    assert safe_output_path(str(link), "x.jpg") == str(link / "x.jpg")


def test_atomic_output_replaces_the_file_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "submission.csv"
    with atomic_output(str(path)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub") and tmp.endswith(".csv")
        with open(tmp, "w") as f:
            f.write("old\n")
    assert path.read_text() == "old\n"
    with pytest.raises(OSError, match="disk full"):
        with atomic_output(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("PredictionString,image_id\n")
            raise OSError("disk full")
    assert path.read_text() == "old\n", "a failed write leaves the previous file"
    assert os.listdir(path.parent) == ["submission.csv"], "no temporary file is left"


def test_atomic_output_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    link = tmp_path / "submission.csv"
    link.symlink_to(victim)
    with atomic_output(str(link)) as tmp:
        with open(tmp, "w") as f:
            f.write("new")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "new"


# The library's own writers that build output paths: the COCO evaluator and its plots.
# (They sit here because their test files belong to other parts of the tree.)


def _register_tiny_dataset(name: str) -> None:
    record = {"file_name": "0.jpg", "image_id": 0, "height": 40, "width": 50}
    box = {"bbox": [5, 5, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}
    record["annotations"] = [box]
    DatasetCatalog.register(name, lambda: [dict(record)])
    MetadataCatalog.get(name).thing_classes = ["cat"]


def test_coco_evaluator_keeps_a_dataset_named_with_dot_dot_inside_output(tmp_path):
    name = f"../escape_{uuid.uuid4().hex[:8]}"
    _register_tiny_dataset(name)
    out = tmp_path / "inference"
    out.mkdir()
    try:
        COCOEvaluator(name, output_dir=str(out))
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert os.listdir(tmp_path) == ["inference"], "nothing written beside the output folder"
    assert os.listdir(out) == [f"{name[3:]}_coco_format.json"]


def test_coco_evaluator_refuses_a_symlinked_result_file_before_inference(tmp_path):
    name = f"symlinked_{uuid.uuid4().hex[:8]}"
    _register_tiny_dataset(name)
    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    out = tmp_path / "inference"
    out.mkdir()
    (out / "coco_instances_results.json").symlink_to(victim)
    try:
        with pytest.raises(ValueError, match="coco_instances_results.json"):
            COCOEvaluator(name, output_dir=str(out))
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert victim.read_text() == "precious"


def test_a_failed_confusion_matrix_csv_keeps_the_previous_file(tmp_path):
    path = tmp_path / "confusion_matrix.csv"
    path.write_text("previous\n")
    broken = np.array([[1, None], [0, 0]], dtype=object)
    with pytest.raises(TypeError):
        save_confusion_matrix_csv(broken, ["cat"], str(path))
    assert path.read_text() == "previous\n" and os.listdir(tmp_path) == ["confusion_matrix.csv"]
