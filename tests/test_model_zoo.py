"""Tests for d2lite.model_zoo: shipped configs, composed bases, checkpoint URLs."""
from __future__ import annotations

import subprocess
import sys

import pytest

from d2lite import model_zoo
from d2lite.config import get_cfg

COCO_CONFIGS = [
    "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
    "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    "COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml",
    "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml",
    "COCO-Detection/rpn_R_50_FPN_1x.yaml",
]


@pytest.mark.parametrize("path", COCO_CONFIGS)
def test_every_coco_config_merges(path):
    cfg = model_zoo.get_config(path)
    assert cfg.MODEL.BACKBONE.NAME == "build_resnet_fpn_backbone"
    assert cfg.INPUT.MIN_SIZE_TRAIN == (640, 672, 704, 736, 768, 800)


def test_detectron2_values():
    r101 = model_zoo.get_config("COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml")
    assert r101.MODEL.RESNETS.DEPTH == 101 and r101.SOLVER.MAX_ITER == 270000
    assert r101.SOLVER.STEPS == (210000, 250000) and r101.MODEL.RPN.POST_NMS_TOPK_TRAIN == 1000
    x101 = model_zoo.get_config("COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml")
    assert (x101.MODEL.RESNETS.NUM_GROUPS, x101.MODEL.RESNETS.WIDTH_PER_GROUP) == (32, 8)
    assert x101.MODEL.RESNETS.STRIDE_IN_1X1 is False
    rpn = model_zoo.get_config("COCO-Detection/rpn_R_50_FPN_1x.yaml")
    assert rpn.MODEL.META_ARCHITECTURE == "ProposalNetwork" and rpn.MODEL.RPN.POST_NMS_TOPK_TEST == 2000


def test_composed_bases_equal_the_single_chain():
    chained = model_zoo.get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    composed = get_cfg()
    for part in ["models/faster_rcnn_R_50_FPN", "datasets/coco", "schedules/1x", "default_runtime"]:
        composed.merge_from_file(model_zoo.get_config_file(f"_base_/{part}.yaml"))
    assert composed == chained


def test_trash_config_composes_a_list_of_bases():
    cfg = model_zoo.get_config("Trash/faster_rcnn_R_50_FPN_trash_1x.yaml")
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 10
    assert cfg.DATASETS.TRAIN == ("coco_trash_train",)
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.SOLVER.MAX_ITER == 12000


def test_checkpoint_url():
    url = model_zoo.get_checkpoint_url("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    assert url == (
        "https://dl.fbaipublicfiles.com/detectron2/COCO-Detection/faster_rcnn_R_50_FPN_1x/"
        "137257794/model_final_b275ba.pkl"
    )
    cfg = model_zoo.get_config("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", trained=True)
    assert cfg.MODEL.WEIGHTS.endswith("137849458/model_final_280758.pkl")
    with pytest.raises(RuntimeError, match="No published checkpoint"):
        model_zoo.get_checkpoint_url("Base-RCNN-FPN.yaml")


def test_unknown_config_lists_nearest():
    with pytest.raises(RuntimeError, match="faster_rcnn_R_50_FPN_3x.yaml"):
        model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_2x.yaml")


def test_get_config_file_from_another_directory(tmp_path):
    code = (
        "import os; from d2lite import model_zoo; "
        "p = model_zoo.get_config_file('COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml'); "
        "assert os.path.isfile(p), p; print(p)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
