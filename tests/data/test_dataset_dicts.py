from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
import torch.utils.data as torchdata

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.dataset_dicts import (
    get_detection_dataset_dicts,
    load_proposals_into_dataset,
    print_instances_class_histogram,
)
from d2lite.structures import BoxMode

pytestmark = pytest.mark.usefixtures("clean_catalogs")


def _dicts(ids=(1, 2)):
    box = {"bbox": [0, 0, 2, 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}
    return [{"file_name": f"{i}.jpg", "image_id": i, "annotations": [dict(box)]} for i in ids]


def _proposal_file(tmp_path, **extra):
    proposals = {
        "ids": ["2", 1],  # one written as str, one as int: both must match
        "boxes": [np.array([[0.0, 0, 1, 1], [0, 0, 3, 3]]), np.array([[1.0, 1, 2, 2]])],
        "objectness_logits": [np.array([0.1, 0.9]), np.array([0.5])],
        **extra,
    }
    path = tmp_path / "props.pkl"
    path.write_bytes(pickle.dumps(proposals))
    return str(path)


def test_load_proposals_sorts_by_score_and_matches_ids(tmp_path):
    dicts = load_proposals_into_dataset(_dicts(), _proposal_file(tmp_path))
    assert dicts[1]["proposal_boxes"].tolist() == [[0, 0, 3, 3], [0, 0, 1, 1]]
    assert dicts[1]["proposal_objectness_logits"].tolist() == [0.9, 0.1]
    assert dicts[0]["proposal_boxes"].tolist() == [[1, 1, 2, 2]]
    assert dicts[0]["proposal_bbox_mode"] == BoxMode.XYXY_ABS
    with pytest.raises(KeyError, match="no proposals for image 3"):
        load_proposals_into_dataset(_dicts((3,)), _proposal_file(tmp_path))


def test_load_proposals_reads_detectron1_names_and_bbox_mode(tmp_path):
    path = tmp_path / "d1.pkl"
    d1 = {"indexes": [1], "boxes": [np.zeros((1, 4))], "scores": [np.ones(1)], "bbox_mode": 1}
    path.write_bytes(pickle.dumps(d1))
    (record,) = load_proposals_into_dataset(_dicts((1,)), str(path))
    assert record["proposal_bbox_mode"] == BoxMode.XYWH_ABS
    assert record["proposal_objectness_logits"].tolist() == [1.0]


def test_load_proposals_takes_a_pickled_box_mode(tmp_path):
    path = _proposal_file(tmp_path, bbox_mode=BoxMode.XYWH_ABS)  # pickled as the enum itself
    dicts = load_proposals_into_dataset(_dicts(), path)
    assert dicts[0]["proposal_bbox_mode"] == BoxMode.XYWH_ABS


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while unpickling",))


def test_a_proposal_file_that_would_run_code_is_refused_by_name(tmp_path, capsys):
    path = _proposal_file(tmp_path, trap=_RunsCode())
    with pytest.raises(pickle.UnpicklingError, match=r"props\.pkl.*builtins\.print"):
        load_proposals_into_dataset(_dicts(), path)
    assert "this ran" not in capsys.readouterr().out


def test_get_detection_dataset_dicts_with_proposal_files(tmp_path):
    DatasetCatalog.register("dd_props", _dicts)
    files = [_proposal_file(tmp_path)]
    first, second = get_detection_dataset_dicts("dd_props", proposal_files=files)
    assert "proposal_boxes" in first and "proposal_boxes" in second


def test_min_keypoints_filters_images():
    dicts = _dicts((1, 2, 3))
    dicts[0]["annotations"][0]["keypoints"] = [1, 1, 2, 2, 2, 2]
    dicts[1]["annotations"][0]["keypoints"] = [1, 1, 2, 0, 0, 0]
    DatasetCatalog.register("dd_kps", lambda: dicts)
    kept = get_detection_dataset_dicts("dd_kps", min_keypoints=2)
    assert [d["image_id"] for d in kept] == [1]
    with pytest.raises(ValueError, match="min_keypoints=3"):
        get_detection_dataset_dicts("dd_kps", min_keypoints=3)


class _Stream(torchdata.IterableDataset):
    def __iter__(self):
        yield from range(3)


def test_registered_torch_datasets_are_returned_as_they_are():
    DatasetCatalog.register("dd_stream", _Stream)
    DatasetCatalog.register("dd_list_a", lambda: torchdata.TensorDataset(torch.arange(2)))
    DatasetCatalog.register("dd_list_b", lambda: torchdata.TensorDataset(torch.arange(3)))
    assert isinstance(get_detection_dataset_dicts("dd_stream"), _Stream)
    both = get_detection_dataset_dicts(["dd_list_a", "dd_list_b"])
    assert isinstance(both, torchdata.ConcatDataset) and len(both) == 5


def test_missing_thing_classes_in_a_second_dataset_warns(caplog):
    DatasetCatalog.register("dd_named", _dicts)
    DatasetCatalog.register("dd_unnamed", lambda: _dicts((5,)))
    MetadataCatalog.get("dd_named").thing_classes = ["a"]
    with caplog.at_level(logging.WARNING, logger="d2lite.data"):
        dicts = get_detection_dataset_dicts(["dd_named", "dd_unnamed"])
    assert len(dicts) == 3 and "Not checking" in caplog.text


def test_class_histogram_table_and_range_check(caplog):
    dicts = _dicts((1, 2))
    dicts[1]["annotations"].append({"category_id": 1, "iscrowd": 1})  # crowd: not counted
    with caplog.at_level(logging.INFO, logger="d2lite.data"):
        print_instances_class_histogram(dicts, ["cat", "dog"])
    assert "| cat" in caplog.text and "total" in caplog.text
    row = next(line for line in caplog.text.splitlines() if line.startswith("| cat "))
    assert [c.strip() for c in row.strip("|").split("|")][:4] == ["cat", "2", "dog", "0"]
    with pytest.raises(AssertionError, match="category_id 0..0 for a dataset of 0 classes"):
        print_instances_class_histogram(dicts, [])
