from __future__ import annotations

import pytest

from d2lite.evaluation.coco_metrics import (
    build_coco_api,
    evaluate_boxes,
    format_summary_table,
    prepare_coco_gt,
    summarize_boxes,
)


def _gt() -> dict:
    return {
        "images": [{"id": 0, "width": 50, "height": 50}],
        "categories": [{"id": 0, "name": "a"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 20]},
            {"id": 7, "image_id": 0, "category_id": 0, "bbox": [20, 20, 10, 10], "iscrowd": 1},
        ],
    }


def test_prepare_coco_gt_renumbers_and_fills_defaults():
    raw = _gt()
    gt = prepare_coco_gt(raw)
    assert [a["id"] for a in gt["annotations"]] == [1, 2]
    assert gt["annotations"][0]["area"] == 200.0 and gt["annotations"][0]["iscrowd"] == 0
    assert gt["annotations"][1]["iscrowd"] == 1
    # The input is left untouched.
    assert [a["id"] for a in raw["annotations"]] == [0, 7] and "area" not in raw["annotations"][0]


def test_prepare_coco_gt_errors_name_the_file():
    with pytest.raises(ValueError, match="gt.json has no 'categories'"):
        prepare_coco_gt({"images": [], "annotations": []}, "gt.json")
    bad = _gt()
    bad["annotations"][1]["bbox"] = [1, 2]
    with pytest.raises(ValueError, match="Annotation 7 in gt.json has no valid 'bbox'"):
        prepare_coco_gt(bad, "gt.json")


def test_summary_ignores_crowd_and_empty_results_score_zero():
    coco_gt = build_coco_api(prepare_coco_gt(_gt()), use_fast_impl=False)
    hit = [{"image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 20], "score": 0.9}]
    full = summarize_boxes(evaluate_boxes(coco_gt, hit, use_fast_impl=False))
    assert full["AP"] == pytest.approx(100)
    empty = summarize_boxes(evaluate_boxes(coco_gt, [], use_fast_impl=False))
    assert empty["AP"] == 0.0 and empty["AP50"] == 0.0


def test_max_dets_other_than_100():
    coco_gt = build_coco_api(prepare_coco_gt(_gt()), use_fast_impl=False)
    # The true box scores lowest; with maxDets 2 it is cut off, with 100 it counts.
    dets = [{"image_id": 0, "category_id": 0, "bbox": [40, 40, 5, 5], "score": 0.9}] * 2
    dets = dets + [{"image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 20], "score": 0.1}]
    two = evaluate_boxes(coco_gt, dets, max_dets_per_image=[1, 1, 2], use_fast_impl=False)
    assert summarize_boxes(two)["AP"] == 0.0
    hundred = evaluate_boxes(coco_gt, dets, use_fast_impl=False)
    assert 0 < summarize_boxes(hundred)["AP"] < 100


def test_format_summary_table():
    table = format_summary_table({"AP": 1.0, "AP50": 12.3456})
    assert table == "|   AP  |  AP50  |\n| 1.000 | 12.346 |"


def test_faster_coco_eval_gives_the_same_numbers():
    pytest.importorskip("faster_coco_eval")
    dets = [
        {"image_id": 0, "category_id": 0, "bbox": [2, 0, 10, 20], "score": 0.9},
        {"image_id": 0, "category_id": 0, "bbox": [30, 0, 10, 20], "score": 0.8},
    ]
    stats = []
    for fast in (False, True):
        coco_gt = build_coco_api(prepare_coco_gt(_gt()), use_fast_impl=fast)
        stats.append(summarize_boxes(evaluate_boxes(coco_gt, dets, use_fast_impl=fast)))
    assert stats[0]["AP"] == pytest.approx(stats[1]["AP"])
    assert stats[0]["AP75"] == pytest.approx(stats[1]["AP75"])
