"""GeneralizedRCNNWithTTA and DatasetMapperTTA on the tiny model."""
from __future__ import annotations

import pytest
import torch

from d2lite.config import get_cfg
from d2lite.modeling import build_model
from d2lite.modeling.test_time_augmentation import DatasetMapperTTA, GeneralizedRCNNWithTTA
from d2lite.structures import pairwise_iou


def _cfg(min_sizes=(64,), flip=False):
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    cfg.TEST.AUG.MIN_SIZES = min_sizes
    cfg.TEST.AUG.MAX_SIZE = 200
    cfg.TEST.AUG.FLIP = flip
    return cfg


def _model(cfg):
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _input(h=64, w=80):
    g = torch.Generator().manual_seed(1)
    return {"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g), "height": h, "width": w}


def test_mapper_makes_one_copy_per_size_and_flip():
    mapper = DatasetMapperTTA(_cfg(min_sizes=(32, 48, 64), flip=True))
    copies = mapper(_input(64, 80))
    assert len(copies) == 6
    assert [tuple(c["image"].shape[1:]) for c in copies[::2]] == [(32, 40), (48, 60), (64, 80)]
    flipped = copies[1]["image"]
    assert torch.equal(flipped, copies[0]["image"].flip(-1))
    box = copies[1]["transforms"].apply_box([[0.0, 0.0, 8.0, 4.0]])
    assert box.tolist() == [[36.0, 0.0, 40.0, 2.0]]  # resized by 0.5, then flipped in a width of 40


def test_mapper_starts_from_the_original_size():
    # A loader that already resized the image: the copies' transforms map from the original.
    inputs = _input(32, 40)
    inputs["height"], inputs["width"] = 64, 80
    copy = DatasetMapperTTA(min_sizes=[64], max_size=1000, flip=False)(inputs)[0]
    assert tuple(copy["image"].shape[1:]) == (64, 80)
    assert copy["transforms"].apply_box([[10.0, 10.0, 20.0, 20.0]]).tolist() == [[10.0, 10.0, 20.0, 20.0]]


def test_one_unflipped_copy_gives_the_models_own_detections():
    cfg = _cfg(min_sizes=(64,), flip=False)
    model = _model(cfg)
    with torch.no_grad():
        plain = model([_input()])[0]["instances"]
        tta = GeneralizedRCNNWithTTA(cfg, model)([_input()])[0]["instances"]
    assert len(plain) > 0 and len(tta) == len(plain)
    order_p, order_t = plain.scores.argsort(descending=True), tta.scores.argsort(descending=True)
    assert torch.allclose(plain.pred_boxes.tensor[order_p], tta.pred_boxes.tensor[order_t], atol=1e-3)
    assert torch.equal(plain.pred_classes[order_p], tta.pred_classes[order_t])


def test_flipped_copy_boxes_come_back_to_the_original_frame():
    cfg = _cfg(min_sizes=(64,), flip=True)
    model = _model(cfg)
    tta = GeneralizedRCNNWithTTA(cfg, model, batch_size=1)
    inputs = _input()
    with torch.no_grad():
        mirrored = dict(inputs, image=inputs["image"].flip(-1))
        on_mirror = model([mirrored])[0]["instances"].pred_boxes.tensor
        copies = tta.tta_mapper(inputs)
        tfms = [c.pop("transforms") for c in copies]
        boxes, scores, classes = tta._boxes_in_original_frame(copies, tfms)
    w = inputs["width"]
    expected = torch.stack([w - on_mirror[:, 2], on_mirror[:, 1], w - on_mirror[:, 0], on_mirror[:, 3]], 1)
    from_flip = boxes[-len(expected):]
    assert torch.allclose(from_flip, expected, atol=1e-3)


def test_merged_detections_are_inside_the_image_and_capped():
    cfg = _cfg(min_sizes=(48, 64, 96), flip=True)
    cfg.TEST.DETECTIONS_PER_IMAGE = 7
    model = _model(cfg)
    with torch.no_grad():
        out = GeneralizedRCNNWithTTA(cfg, model)([_input(), _input(72, 56)])
    for result, (h, w) in zip(out, [(64, 80), (72, 56)]):
        inst = result["instances"]
        assert inst.image_size == (h, w) and 0 < len(inst) <= 7
        b = inst.pred_boxes.tensor
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        same = inst.pred_classes[:, None] == inst.pred_classes[None]
        iou = pairwise_iou(inst.pred_boxes, inst.pred_boxes).fill_diagonal_(0)
        assert (iou[same] <= cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST + 1e-6).all()  # merged by NMS


def test_only_generalized_rcnn_is_accepted():
    with pytest.raises(TypeError, match="GeneralizedRCNN"):
        GeneralizedRCNNWithTTA(_cfg(), torch.nn.Linear(1, 1))
