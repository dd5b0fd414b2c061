from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
import subprocess
import sys
import uuid

import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from d2lite.config import get_cfg
from d2lite.data.catalog import DatasetCatalog, MetadataCatalog
from d2lite.evaluation import COCOEvaluator, inference_on_dataset, instances_to_coco_json
from d2lite.evaluation.coco_metrics import prepare_coco_gt
from d2lite.extras.reports import COCOEvaluatorWithReports
from d2lite.structures import Boxes, Instances

# Dataset category ids 0, 2, 5 map to contiguous 0, 1, 2; "bird" (5) has no ground truth.
CLASSES = ["cat", "dog", "bird"]
ID_MAP = {0: 0, 2: 1, 5: 2}
# Annotation ids start at 0, as in the course's data: (id, image_id, category_id, XYWH box).
ANNOTATIONS = [
    (0, 0, 0, [10.0, 10.0, 40.0, 40.0]),
    (1, 1, 2, [20.0, 20.0, 40.0, 60.0]),
    (2, 1, 0, [60.0, 50.0, 40.0, 40.0]),
    (3, 2, 2, [5.0, 5.0, 40.0, 80.0]),
]


def _coco_dict() -> dict:
    return {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 120, "height": 100} for i in range(3)
        ],
        "categories": [{"id": k, "name": n} for k, n in zip(ID_MAP, CLASSES)],
        "annotations": [
            {"id": a, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for a, i, c, b in ANNOTATIONS
        ],
    }


@pytest.fixture
def dataset(tmp_path):
    """Registers the hand-made dataset's metadata under a unique name; yields the name."""
    json_file = tmp_path / "gt.json"
    json_file.write_text(json.dumps(_coco_dict()))
    name = f"eval_test_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(name).set(
        json_file=str(json_file), thing_classes=CLASSES, thing_dataset_id_to_contiguous_id=ID_MAP
    )
    yield name
    MetadataCatalog.remove(name)


def _outputs(shift: float = 0.0, drop: tuple[int, ...] = ()) -> tuple[list[dict], list[dict]]:
    """One batch per image: a detection on every GT box, shifted right by ``shift`` pixels."""
    inputs, outputs = [], []
    for image_id in range(3):
        anns = [a for a in ANNOTATIONS if a[1] == image_id and a[0] not in drop]
        inst = Instances((100, 120))
        xyxy = [[x + shift, y, x + w + shift, y + h] for _, _, _, (x, y, w, h) in anns]
        inst.pred_boxes = Boxes(torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.linspace(0.9, 0.8, len(anns))
        inst.pred_classes = torch.tensor([ID_MAP[a[2]] for a in anns], dtype=torch.long)
        inputs.append({"image_id": image_id, "height": 100, "width": 120})
        outputs.append({"instances": inst})
    return inputs, outputs


def _evaluate(evaluator: COCOEvaluator, inputs: list[dict], outputs: list[dict]) -> dict:
    evaluator.reset()
    for inp, out in zip(inputs, outputs):
        evaluator.process([inp], [out])
    return evaluator.evaluate()


def _pycocotools_ap(gt: dict, results: list[dict]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats[0] * 100


def test_perfect_detections_give_ap_100_and_write_reports(dataset, tmp_path):
    out = tmp_path / "out"
    results = _evaluate(COCOEvaluatorWithReports(dataset, output_dir=str(out)), *_outputs())
    bbox = results["bbox"]
    for key in ("AP", "AP50", "AP75", "APm", "AP-cat", "AP-dog", "AP50-cat", "AP50-dog"):
        assert bbox[key] == pytest.approx(100.0), key
    assert all(type(v) is float for v in bbox.values())
    for name in ("coco_instances_results.json", "per_class_results.md", "pr_curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "confusion_matrix.png").stat().st_size > 0
    saved = json.loads((out / "coco_instances_results.json").read_text())
    assert len(saved) == 4
    # Contiguous class 1 maps back to the dataset's category id 2; id 0 stays 0.
    assert sorted({r["category_id"] for r in saved}) == [0, 2]
    assert saved[0]["bbox"] == [10.0, 10.0, 40.0, 40.0] and saved[0]["image_id"] == 0


def test_class_without_ground_truth_is_reported_plainly(dataset, tmp_path, caplog):
    out = tmp_path / "out"
    evaluator = COCOEvaluatorWithReports(dataset, output_dir=str(out))
    with caplog.at_level(logging.INFO, logger="d2lite"):
        bbox = _evaluate(evaluator, *_outputs(drop=(1,)))["bbox"]
    assert "AP-bird" not in bbox and "AP50-bird" not in bbox
    assert not any(isinstance(v, float) and math.isnan(v) for k, v in bbox.items() if "-" in k)
    # dog: 1 of 2 boxes found at the top score -> AP 50; the mean is over cat and dog only.
    assert bbox["AP-dog"] == pytest.approx(50.0, abs=0.6)
    assert bbox["AP"] == pytest.approx((bbox["AP-cat"] + bbox["AP-dog"]) / 2)
    table = (out / "per_class_results.md").read_text()
    assert "| bird | no GT | no GT | 0 | 0 |" in table
    assert "| dog | " in table and " | 2 | 1 |" in table
    assert "Classes without ground truth" in caplog.text and "'bird'" in caplog.text
    assert "no curve in pr_curves.png" in caplog.text


def test_report_pictures_name_their_thresholds(dataset, tmp_path, monkeypatch):
    from d2lite.extras import plots

    figures = {}
    for name in ("plot_confusion_matrix", "plot_pr_curves"):
        real = getattr(plots, name)
        monkeypatch.setattr(
            plots, name, lambda *a, _real=real, _n=name, **k: figures.setdefault(_n, _real(*a, **k))
        )
    evaluator = COCOEvaluatorWithReports(
        dataset, output_dir=str(tmp_path), confusion_score_threshold=0.3
    )
    _evaluate(evaluator, *_outputs(drop=(1,)))
    title = figures["plot_confusion_matrix"]._suptitle.get_text()
    assert "IoU ≥ 0.5" in title and "below 0.3" in title
    pr = figures["plot_pr_curves"].axes[0]
    assert pr.get_title().startswith("Precision-recall at IoU 0.5")
    assert "bird: no ground truth" in [t.get_text() for t in pr.get_legend().get_texts()]
    assert (tmp_path / "pr_curves.png").is_file() and (tmp_path / "confusion_matrix.png").is_file()


def test_shifted_boxes_iou_0_6_match_pycocotools(dataset, tmp_path):
    # Every box is 40 px wide; a 10 px shift gives IoU 30 / 50 = 0.6 exactly.
    inputs, outputs = _outputs(shift=10.0)
    bbox = _evaluate(COCOEvaluator(dataset, output_dir=str(tmp_path)), inputs, outputs)["bbox"]
    assert bbox["AP50"] == pytest.approx(100.0)
    assert bbox["AP75"] == pytest.approx(0.0)
    results = json.loads((tmp_path / "coco_instances_results.json").read_text())
    reference = _pycocotools_ap(prepare_coco_gt(_coco_dict()), results)
    assert 0 < reference < 100
    assert bbox["AP"] == pytest.approx(reference)


def test_id_zero_trap(dataset, tmp_path):
    bbox = _evaluate(COCOEvaluator(dataset, output_dir=str(tmp_path)), *_outputs())["bbox"]
    results = json.loads((tmp_path / "coco_instances_results.json").read_text())
    raw_ap = _pycocotools_ap(_coco_dict(), results)
    # Plain pycocotools never counts the match with annotation id 0, so cat loses AP.
    assert raw_ap < 90.0
    assert bbox["AP"] == pytest.approx(100.0)


def test_no_detections_gives_zeros_not_a_crash(dataset, tmp_path, caplog):
    inputs, outputs = _outputs(drop=(0, 1, 2, 3))
    with caplog.at_level(logging.WARNING):
        evaluator = COCOEvaluatorWithReports(dataset, output_dir=str(tmp_path))
        bbox = _evaluate(evaluator, inputs, outputs)["bbox"]
    assert "No predictions from the model" in caplog.text
    assert bbox["AP"] == 0.0 and bbox["AP50"] == 0.0 and bbox["AP-cat"] == 0.0
    assert json.loads((tmp_path / "coco_instances_results.json").read_text()) == []
    assert (tmp_path / "confusion_matrix.csv").exists()


def test_no_images_processed_returns_empty(dataset, caplog):
    evaluator = COCOEvaluator(dataset, distributed=False)
    evaluator.reset()
    assert evaluator.evaluate() == {}
    assert "Did not receive valid predictions" in caplog.text


def test_cfg_as_second_argument(dataset, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        evaluator = COCOEvaluator(dataset, get_cfg(), False, str(tmp_path))
    assert "deprecated" in caplog.text
    assert _evaluate(evaluator, *_outputs())["bbox"]["AP"] == pytest.approx(100.0)


def test_unsupported_task_and_bad_class_id(dataset):
    with pytest.raises(ValueError, match="only 'bbox'"):
        COCOEvaluator(dataset, tasks=("bbox", "segm"))
    inputs, outputs = _outputs()
    outputs[0]["instances"].pred_classes[:] = 7
    with pytest.raises(ValueError, match="class=7"):
        _evaluate(COCOEvaluator(dataset, distributed=False), inputs, outputs)


def test_unknown_image_id_is_a_clear_error(dataset):
    inputs, outputs = _outputs()
    inputs[0] = dict(inputs[0], image_id=99)
    with pytest.raises(ValueError, match=r"image ids \[99\]"):
        _evaluate(COCOEvaluator(dataset), inputs, outputs)


def test_inference_on_dataset_with_coco_evaluator(dataset):
    inputs, outputs = _outputs()
    by_id = {inp["image_id"]: out for inp, out in zip(inputs, outputs)}
    model = lambda batch: [by_id[x["image_id"]] for x in batch]  # noqa: E731
    loader = [inputs[:2], inputs[2:]]
    results = inference_on_dataset(model, loader, COCOEvaluator(dataset))
    assert results["bbox"]["AP"] == pytest.approx(100.0)


def test_dataset_without_json_is_converted(tmp_path):
    name = f"eval_convert_{uuid.uuid4().hex[:8]}"
    gt = _coco_dict()
    records = []
    for img in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        records.append(
            {
                "file_name": img["file_name"],
                "image_id": img["id"],
                "height": img["height"],
                "width": img["width"],
                "annotations": [
                    {"bbox": a["bbox"], "bbox_mode": 1, "category_id": ID_MAP[a["category_id"]]}
                    for a in anns
                ],
            }
        )
    DatasetCatalog.register(name, lambda: copy.deepcopy(records))
    MetadataCatalog.get(name).set(thing_classes=CLASSES)
    try:
        evaluator = COCOEvaluator(name, output_dir=str(tmp_path))
        assert os.path.exists(tmp_path / f"{name}_coco_format.json")
        assert _evaluate(evaluator, *_outputs())["bbox"]["AP"] == pytest.approx(100.0)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_instances_to_coco_json():
    inst = Instances((10, 10))
    inst.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 4.0, 8.0]]))
    inst.scores = torch.tensor([0.5])
    inst.pred_classes = torch.tensor([3])
    assert instances_to_coco_json(inst, 7) == [
        {"image_id": 7, "category_id": 3, "bbox": [1.0, 2.0, 3.0, 6.0], "score": 0.5}
    ]
    assert instances_to_coco_json(inst[:0], 7) == []


def test_metadata_with_only_json_file_uses_json_ids_and_names(tmp_path):
    json_file = tmp_path / "gt.json"
    json_file.write_text(json.dumps(_coco_dict()))
    name = f"eval_plain_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(name).set(json_file=str(json_file))
    inputs, outputs = _outputs()
    reverse = {v: k for k, v in ID_MAP.items()}
    for out in outputs:
        classes = out["instances"].pred_classes
        out["instances"].pred_classes = torch.tensor([reverse[int(c)] for c in classes])
    try:
        bbox = _evaluate(COCOEvaluator(name), inputs, outputs)["bbox"]
    finally:
        MetadataCatalog.remove(name)
    assert bbox["AP-cat"] == pytest.approx(100.0) and bbox["AP-dog"] == pytest.approx(100.0)


def test_evaluate_on_a_subset_of_images(dataset):
    inputs, outputs = _outputs()
    evaluator = COCOEvaluator(dataset)
    _evaluate(evaluator, inputs[:1], outputs[:1])
    # Only image 0 (one cat) is scored, so the missing detections elsewhere do not count.
    bbox = evaluator.evaluate(img_ids=[0])["bbox"]
    assert bbox["AP"] == pytest.approx(100.0)
    assert "AP-dog" not in bbox


def test_register_coco_instances_course_style_json(tmp_path):
    from d2lite.data.datasets.coco import register_coco_instances

    gt = _coco_dict()
    for ann in gt["annotations"]:
        del ann["area"], ann["iscrowd"]
    (tmp_path / "course.json").write_text(json.dumps(gt))
    name = f"eval_course_{uuid.uuid4().hex[:8]}"
    register_coco_instances(name, {}, str(tmp_path / "course.json"), str(tmp_path))
    try:
        evaluator = COCOEvaluator(name, output_dir=str(tmp_path / "out"))
        # As in a training script, the loader reads the dataset (and sets the id mapping)
        # before the evaluation ends.
        assert len(DatasetCatalog.get(name)) == 3
        bbox = _evaluate(evaluator, *_outputs())["bbox"]
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert bbox["AP"] == pytest.approx(100.0)
    assert bbox["AP-dog"] == pytest.approx(100.0)


def test_contiguous_predictions_without_id_mapping_get_a_hint(tmp_path):
    gt = _coco_dict()
    for cat in gt["categories"]:
        cat["id"] += 1
    for ann in gt["annotations"]:
        ann["category_id"] += 1
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    name = f"eval_nomap_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(name).set(json_file=str(tmp_path / "gt.json"))
    try:
        with pytest.raises(ValueError, match=r"ids \[0\] are not categories .* DatasetCatalog.get"):
            _evaluate(COCOEvaluator(name), *_outputs())
    finally:
        MetadataCatalog.remove(name)


def test_tiny_faster_rcnn_outputs_evaluate_to_plain_floats(dataset, tmp_path):
    from d2lite.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    torch.manual_seed(0)
    model = build_model(cfg).train()
    # Images of different sizes, all to be reported at the dataset's 100x120.
    sizes = [(50, 60), (60, 60), (70, 60)]
    loader = [
        [{"image_id": i, "height": 100, "width": 120, "image": torch.zeros(3, h, w).byte()}]
        for i, (h, w) in enumerate(sizes)
    ]
    results = inference_on_dataset(model, loader, COCOEvaluator(dataset, output_dir=str(tmp_path)))
    assert model.training
    bbox = results["bbox"]
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "AP-cat", "AP50-dog"} <= set(bbox)
    assert all(type(v) is float for v in bbox.values())
    assert 0.0 <= bbox["AP"] <= 100.0
    saved = json.loads((tmp_path / "coco_instances_results.json").read_text())
    # Predictions are rescaled to 100x120 and mapped back to dataset ids.
    assert saved and all(r["category_id"] in ID_MAP for r in saved)
    assert max(r["bbox"][0] + r["bbox"][2] for r in saved) <= 120.0 + 1e-3


def test_build_coco_evaluator_for_coco_datasets_and_names_other_types(tmp_path):
    from d2lite.config import get_cfg
    from d2lite.data import MetadataCatalog
    from d2lite.extras.reports import build_coco_evaluator

    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    MetadataCatalog.get("eval_test_voc").set(evaluator_type="pascal_voc")
    try:
        with pytest.raises(NotImplementedError, match="'eval_test_voc'.*'pascal_voc'"):
            build_coco_evaluator(cfg, "eval_test_voc")
    finally:
        MetadataCatalog.remove("eval_test_voc")


def test_coco_evaluator_computes_metrics_without_matplotlib(tmp_path):
    # In a fresh process: the test session itself has drawn figures already.
    code = f"""
import json, sys
import torch
import d2lite.evaluation
from d2lite.data import MetadataCatalog
from d2lite.evaluation import COCOEvaluator
from d2lite.structures import Boxes, Instances
gt = {_coco_dict()!r}
open({str(tmp_path / "gt.json")!r}, "w").write(json.dumps(gt))
MetadataCatalog.get("no_mpl").set(json_file={str(tmp_path / "gt.json")!r})
evaluator = COCOEvaluator("no_mpl", output_dir={str(tmp_path / "out")!r})
for a in gt["annotations"]:
    x, y, w, h = a["bbox"]
    inst = Instances((100, 120))
    inst.pred_boxes = Boxes(torch.tensor([[x, y, x + w, y + h]]))
    inst.scores = torch.tensor([0.9])
    inst.pred_classes = torch.tensor([a["category_id"]])
    evaluator.process([{{"image_id": a["image_id"]}}], [{{"instances": inst}}])
print(round(evaluator.evaluate()["bbox"]["AP"]), "matplotlib" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["100", "False"]
    assert sorted(os.listdir(tmp_path / "out")) == ["coco_instances_results.json"]


def test_build_coco_evaluator_writes_the_reports(dataset, tmp_path):
    from d2lite.extras.reports import build_coco_evaluator

    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    evaluator = build_coco_evaluator(cfg, dataset)
    assert isinstance(evaluator, COCOEvaluator)
    _evaluate(evaluator, *_outputs())
    assert sorted(os.listdir(tmp_path / "inference")) == [
        "coco_instances_results.json",
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "per_class_results.md",
        "pr_curves.png",
    ]
