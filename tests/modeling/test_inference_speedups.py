"""The fast inference path (BN folded into the convs, ``prepare_for_inference``) detects the
same boxes and classes as the plain eager model, on the tiny config and on an R50-FPN."""
from __future__ import annotations

import pytest
import torch

from d2lite.config import get_cfg
from d2lite.engine.predictor import prepare_for_inference
from d2lite.layers import Conv2d, FrozenBatchNorm2d
from d2lite.modeling import build_model


def _randomise_frozen_bn(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics, so that folding them into the convs is really exercised."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, FrozenBatchNorm2d):
            c = m.num_features
            m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)


def _detect_plain_and_fast(cfg, images: list[torch.Tensor], monkeypatch):
    torch.manual_seed(0)
    model = build_model(cfg)
    _randomise_frozen_bn(model)
    # Random-init RPN deltas move every anchor off the image; zero ones keep the anchors.
    torch.nn.init.zeros_(model.proposal_generator.rpn_head.anchor_deltas.weight)
    # Random-init box features are large: shrink the logits so foreground scores stay > 0.
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(1e-3)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(1e-2)
    model.eval()
    inputs = [{"image": img, "height": img.shape[1], "width": img.shape[2]} for img in images]
    monkeypatch.setattr(Conv2d, "fold_frozen_bn", False)
    with torch.inference_mode():
        plain = model(inputs)
    monkeypatch.setattr(Conv2d, "fold_frozen_bn", True)
    fast_model = prepare_for_inference(model)
    assert fast_model is model and not model.training
    with torch.inference_mode():
        fast = fast_model(inputs)
    return plain, fast


def _assert_same_detections(plain: list[dict], fast: list[dict]) -> None:
    assert sum(len(p["instances"]) for p in plain) > 0, "nothing detected: the test is vacuous"
    for p, f in zip(plain, fast):
        p, f = p["instances"], f["instances"]
        assert len(p) == len(f)
        assert torch.equal(p.pred_classes, f.pred_classes)
        torch.testing.assert_close(f.pred_boxes.tensor, p.pred_boxes.tensor, atol=1e-3, rtol=0)
        torch.testing.assert_close(f.scores, p.scores, atol=1e-4, rtol=0)


def test_tiny_model_fast_path_same_detections(monkeypatch):
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
              for h, w in ((64, 88), (72, 64))]
    plain, fast = _detect_plain_and_fast(cfg, images, monkeypatch)
    _assert_same_detections(plain, fast)


def test_r50_fpn_fast_path_same_detections(monkeypatch):
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.RPN.PRE_NMS_TOPK_TEST", "200",
        "MODEL.RPN.POST_NMS_TOPK_TEST", "50", "TEST.DETECTIONS_PER_IMAGE", "20",
    ])
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN"
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 96, 128), generator=g, dtype=torch.uint8)]
    plain, fast = _detect_plain_and_fast(cfg, images, monkeypatch)
    _assert_same_detections(plain, fast)


def test_prepare_for_inference_keeps_state_dict():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    model = build_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_for_inference(model)
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prepare_for_inference_on_cuda_keeps_layout():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    cfg.MODEL.DEVICE = "cuda"
    model = prepare_for_inference(build_model(cfg))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()
