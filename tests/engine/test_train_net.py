from __future__ import annotations

import importlib.util
import os

import pytest

from d2lite.extras.synthetic import TRASH_CLASSES
from d2lite.engine import default_argument_parser
from d2lite.model_zoo import get_config_file

TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "tools")


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f"engine_test_{name}", os.path.join(TOOLS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(tmp_path, trash_datasets, *extra):
    opts = [
        "--config-file",
        get_config_file("tiny/faster_rcnn_tiny.yaml"),
        *extra,
        "DATASETS.TRAIN",
        f"('{trash_datasets['train']}',)",
        "DATASETS.TEST",
        f"('{trash_datasets['val']}',)",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        str(len(TRASH_CLASSES)),
        "SOLVER.MAX_ITER",
        "2",
        "TEST.EVAL_PERIOD",
        "1",
        "OUTPUT_DIR",
        str(tmp_path / "out"),
    ]
    return default_argument_parser().parse_args(opts)


@pytest.mark.parametrize("tool", ["train_net", "plain_train_net"])
def test_train_then_eval_only(tmp_path, trash_datasets, tool):
    module = _load_tool(tool)
    results = module.main(_args(tmp_path, trash_datasets))
    assert "AP" in results["bbox"]
    out = tmp_path / "out"
    assert (out / "model_final.pth").exists() and (out / "config.yaml").exists()
    metrics = (out / "metrics.json").read_text()
    assert metrics.count("total_loss") >= 1
    assert "bbox/AP" in metrics  # the evaluation after iteration 0 was recorded
    weights = str(out / "model_final.pth")
    results = module.main(_args(tmp_path, trash_datasets, "--eval-only", "MODEL.WEIGHTS", weights))
    assert "AP" in results["bbox"]


def test_train_net_trainer_builds_coco_evaluators_and_names_unknown_types(
    tmp_path, trash_datasets
):
    from d2lite.config import get_cfg
    from d2lite.data import MetadataCatalog
    from d2lite.evaluation import COCOEvaluator

    trainer_cls = _load_tool("train_net").Trainer
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    MetadataCatalog.get("engine_test_sem").set(evaluator_type="sem_seg")
    try:
        evaluator = trainer_cls.build_evaluator(cfg, trash_datasets["val"])
        assert isinstance(evaluator, COCOEvaluator)
        with pytest.raises(NotImplementedError, match="'engine_test_sem'.*'sem_seg'"):
            trainer_cls.build_evaluator(cfg, "engine_test_sem")
        with pytest.raises(NotImplementedError, match="'engine_test_sem'.*'sem_seg'"):
            _load_tool("plain_train_net").get_evaluator(cfg, "engine_test_sem")
    finally:
        MetadataCatalog.remove("engine_test_sem")


def test_train_net_evaluates_with_tta_when_test_aug_is_enabled(tmp_path, trash_datasets):
    module = _load_tool("train_net")
    aug = ["TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "(48, 64)", "TEST.AUG.MAX_SIZE", "128"]
    args = _args(tmp_path, trash_datasets)
    args.opts += aug
    module.main(args)
    # The EvalHook(0, test_with_TTA) of Detectron2's train_net ran after training. As there, it
    # comes after the writers, so its results are logged but not in metrics.json.
    assert (tmp_path / "out" / "inference_TTA" / "coco_instances_results.json").exists()
    assert "bbox_TTA" not in (tmp_path / "out" / "metrics.json").read_text()
    (tmp_path / "out" / "inference_TTA" / "coco_instances_results.json").unlink()
    weights = str(tmp_path / "out" / "model_final.pth")
    args = _args(tmp_path, trash_datasets, "--eval-only", "MODEL.WEIGHTS", weights)
    args.opts += aug
    results = module.main(args)
    assert "AP" in results["bbox"] and "AP" in results["bbox_TTA"]
    assert (tmp_path / "out" / "inference_TTA" / "coco_instances_results.json").exists()
