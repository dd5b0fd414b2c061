"""The loader (load_coco_json) and the checker (d2lite check) judge COCO files by one rule set."""
from __future__ import annotations

import json

import pytest

from d2lite.data.datasets import load_coco_json
from d2lite.data.datasets.coco_rules import DROPPED_KINDS, box_problems, entry_problems
from d2lite.extras.check_dataset import check_coco_dict


def _data() -> dict:
    return {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [0, 0, 5, 5], "category_id": 3, "iscrowd": 0},
            {"id": 2, "image_id": 1, "bbox": [1, 1, 4, 4], "category_id": 3},
        ],
        "categories": [{"id": 3, "name": "thing"}],
    }


def _set(key, value):
    return lambda d: d["annotations"][1].update({key: value})


def _drop(key):
    return lambda d: d["annotations"][1].pop(key)


def _replace_annotation(value):
    return lambda d: d["annotations"].__setitem__(1, value)


# (mutation of annotation id 2, the kind of problem both must see, what the loader does)
CASES = {
    "good": (lambda d: None, None, "keeps"),
    "dangling image": (_set("image_id", 9), "dangling_image_id", "raises"),
    "unknown category": (_set("category_id", 7), "unknown_category_id", "raises"),
    "NaN box": (_set("bbox", [0, float("nan"), 2, 2]), "non_finite_box", "raises"),
    "infinite box": (_set("bbox", [0, 0, float("inf"), 2]), "non_finite_box", "raises"),
    "3-number box": (_set("bbox", [0, 0, 2]), "annotations_schema", "raises"),
    "text in box": (_set("bbox", [0, 0, "2", 2]), "annotations_schema", "raises"),
    "boolean in box": (_set("bbox", [0, 0, True, 2]), "annotations_schema", "raises"),
    "no category": (_drop("category_id"), "annotations_schema", "raises"),
    "iscrowd 2": (_set("iscrowd", 2), "annotations_schema", "raises"),
    "duplicate id": (_set("id", 1), "duplicate_annotation_id", "raises"),
    "not an object": (_replace_annotation([1, 2]), "annotations_schema", "raises"),
    "zero width": (_set("bbox", [0, 0, 0, 2]), "non_positive_box", "drops"),
    "negative height": (_set("bbox", [0, 0, 2, -1]), "non_positive_box", "drops"),
}


@pytest.mark.parametrize("case", CASES)
def test_loader_and_checker_reach_the_same_verdict(tmp_path, case):
    mutation, kind, loader_does = CASES[case]
    data = _data()
    mutation(data)
    report = check_coco_dict(data, None, check_images=False)
    kinds = {k for k, messages in report.errors.items() if messages}
    assert kinds == ({kind} if kind else set()), report.format()
    json_file = tmp_path / "case.json"
    json_file.write_text(json.dumps(data))
    if loader_does == "raises":
        assert kind not in DROPPED_KINDS
        with pytest.raises(ValueError, match="case.json") as info:
            load_coco_json(str(json_file), str(tmp_path))
        # The annotation at fault: by id, or by position when it has none to give.
        named = {"duplicate id": "annotations id 1", "not an object": "annotations[1]"}
        assert named.get(case, "annotation id 2") in str(info.value)
        return
    dicts = load_coco_json(str(json_file), str(tmp_path))
    kept = len(dicts[0]["annotations"])
    assert kept == (2 if loader_does == "keeps" else 1)
    assert (kind in DROPPED_KINDS) == (loader_does == "drops")


def test_both_name_the_annotation():
    problems = box_problems("annotation 5", 1, 7, [0, 0, 2, 2], {1}, {3})
    assert [p.kind for p in problems] == ["unknown_category_id"]
    assert problems[0].message == "annotation 5 has category_id 7, which is not in 'categories'"
    assert problems[0].entry == "annotation 5 -> category 7 not in categories"


def test_annotations_may_all_go_without_ids_but_not_some():
    anns = [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1]}] * 2
    assert entry_problems("annotations", anns) == (anns, [])
    mixed = [dict(anns[0], id=1), anns[1]]
    valid, problems = entry_problems("annotations", mixed)
    assert valid == mixed[:1] and "has no 'id'" in problems[0].message
