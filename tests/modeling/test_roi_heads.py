import pytest
import torch

from d2lite.config import get_cfg
from d2lite.layers import ShapeSpec
from d2lite.modeling import build_model
from d2lite.modeling.box_regression import Box2BoxTransform
from d2lite.modeling.roi_heads import (
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    Res5ROIHeads,
    StandardROIHeads,
    build_roi_heads,
    fast_rcnn_inference,
    select_foreground_proposals,
)
from d2lite.structures import Boxes, ImageList, Instances
from d2lite.utils.events import EventStorage


def _gt(image_size, boxes, classes):
    inst = Instances(image_size)
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.tensor(classes, dtype=torch.int64)
    return inst


def _proposals(image_size, boxes):
    p = Instances(image_size)
    p.proposal_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    p.objectness_logits = torch.zeros(len(p.proposal_boxes))
    return p


def test_fast_rcnn_inference_hand_made():
    # 3 ROIs x 2 classes, class-specific boxes; the last score column is background.
    box_a, box_b, box_c = [0.0, 0, 10, 10], [1.0, 0, 10, 10], [20.0, 20, 30, 40]
    boxes = torch.tensor([box_a + box_a, box_b + box_b, box_c + [20.0, 20, 30, 50]])
    scores = torch.tensor([[0.6, 0.3, 0.1], [0.7, 0.01, 0.29], [0.2, 0.5, 0.3]])
    results, kept = fast_rcnn_inference([boxes], [scores], [(45, 32)], 0.05, 0.5, 100)
    r = results[0]
    # class 0: ROI 1 (0.7) suppresses ROI 0 (0.6); ROI 2 (0.2) stays. class 1: ROIs 2 and 0.
    assert r.scores.tolist() == pytest.approx([0.7, 0.5, 0.3, 0.2])
    assert r.pred_classes.tolist() == [0, 1, 1, 0]
    assert kept[0].tolist() == [1, 2, 0, 2]
    torch.testing.assert_close(r.pred_boxes.tensor[1], torch.tensor([20.0, 20, 30, 45]))  # clipped
    top2, _ = fast_rcnn_inference([boxes], [scores], [(45, 32)], 0.4, 0.5, 2)
    assert top2[0].scores.tolist() == pytest.approx([0.7, 0.5])
    none, _ = fast_rcnn_inference([boxes], [scores], [(45, 32)], 0.9, 0.5, 100)
    assert len(none[0]) == 0 and none[0].pred_boxes.tensor.shape == (0, 4)


def test_output_layers_shapes_names_and_losses():
    torch.manual_seed(0)
    layer = FastRCNNOutputLayers(
        ShapeSpec(channels=4, height=2, width=2),
        box2box_transform=Box2BoxTransform((10.0, 10.0, 5.0, 5.0)),
        num_classes=3,
    )
    assert layer.cls_score.weight.shape == (4, 16) and layer.bbox_pred.weight.shape == (12, 16)
    scores, deltas = layer(torch.randn(5, 4, 2, 2))
    assert scores.shape == (5, 4) and deltas.shape == (5, 12)
    p = _proposals((40, 40), [[0, 0, 10, 10]] * 3 + [[5, 5, 20, 20]] * 2)
    p.gt_classes = torch.tensor([0, 2, 3, 3, 1])
    p.gt_boxes = Boxes(torch.tensor([[1.0, 1, 11, 11]] * 5))
    with EventStorage() as storage:
        losses = layer.losses((scores, deltas), [p])
        assert "fast_rcnn/cls_accuracy" in storage.histories()
    expected_cls = torch.nn.functional.cross_entropy(scores, p.gt_classes)
    torch.testing.assert_close(losses["loss_cls"], expected_cls)
    assert losses["loss_box_reg"] > 0
    empty = _proposals((40, 40), [])
    empty.gt_classes = torch.zeros(0, dtype=torch.int64)
    zero = layer.losses(layer(torch.randn(0, 16)), [empty])
    assert zero["loss_cls"].item() == 0 and zero["loss_box_reg"].item() == 0


def test_box_head_names_with_convs_and_norm():
    head = FastRCNNConvFCHead(
        ShapeSpec(channels=8, height=7, width=7), conv_dims=[32, 32], fc_dims=[32], conv_norm="GN"
    )
    keys = set(head.state_dict())
    assert {"conv1.weight", "conv1.norm.weight", "conv2.norm.bias", "fc1.weight"} <= keys
    assert "conv1.bias" not in keys
    assert head(torch.randn(3, 8, 7, 7)).shape == (3, 32)
    assert head.output_shape == ShapeSpec(channels=32)
    with pytest.raises(ValueError, match="at least one"):
        FastRCNNConvFCHead(ShapeSpec(channels=8, height=7, width=7), conv_dims=[], fc_dims=[])


def _tiny_roi_heads():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    shapes = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}
    heads = build_roi_heads(cfg, shapes)
    assert isinstance(heads, StandardROIHeads)
    return heads


def test_label_and_sample_proposals_with_empty_gt():
    torch.manual_seed(0)
    heads = _tiny_roi_heads()
    props = [_proposals((64, 64), [[0, 0, 20, 20], [40, 40, 60, 60]]), _proposals((64, 64), [])]
    gt = [_gt((64, 64), [[1, 1, 20, 20]], [1]), _gt((64, 64), [], [])]
    sampled = heads.label_and_sample_proposals(props, gt)
    # GT box appended: proposal 0 and the GT are class 1, proposal 1 is background (2).
    assert sorted(sampled[0].gt_classes.tolist()) == [1, 1, 2]
    fg = sampled[0].gt_classes == 1
    assert (sampled[0].gt_boxes.tensor[fg] == torch.tensor([1.0, 1, 20, 20])).all()
    assert len(sampled[1]) == 0 and sampled[1].has("gt_boxes")


def test_standard_roi_heads_train_and_eval():
    torch.manual_seed(0)
    heads = _tiny_roi_heads()
    features = {"p2": torch.randn(2, 8, 16, 16), "p3": torch.randn(2, 8, 8, 8)}
    images = ImageList(torch.zeros(2, 3, 64, 64), [(64, 64), (64, 56)])
    props = [_proposals((64, 64), [[0, 0, 20, 20]]), _proposals((64, 56), [[3, 3, 30, 30]])]
    gt = [_gt((64, 64), [[1, 1, 20, 20]], [0]), _gt((64, 56), [], [])]
    heads.train()
    _, losses = heads(images, features, props, gt)
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    heads.eval()
    results, losses = heads(images, features, props)
    assert losses == {} and len(results) == 2
    assert {"pred_boxes", "scores", "pred_classes"} <= set(results[0].get_fields())
    assert results[1].image_size == (64, 56)


def test_res5_roi_heads_default_c4_model():
    torch.manual_seed(0)
    cfg = get_cfg()  # Detectron2's defaults describe the C4 model: res4 features, Res5ROIHeads.
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 8
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 8
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 4
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 4
    # A narrow R50 keeps the test fast; res5 widths follow RES2_OUT_CHANNELS and WIDTH_PER_GROUP.
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 32
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 8
    model = build_model(cfg)
    assert isinstance(model.roi_heads, Res5ROIHeads)
    state = model.state_dict()
    assert state["roi_heads.res5.0.shortcut.weight"].shape == (256, 128, 1, 1)
    assert state["roi_heads.res5.0.conv2.weight"].shape == (64, 64, 3, 3)
    assert state["roi_heads.res5.2.conv3.norm.weight"].shape == (256,)
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (4, 256)
    assert state["roi_heads.box_predictor.bbox_pred.weight"].shape == (12, 256)
    gt = _gt((64, 64), [[4, 4, 40, 40]], [2])
    batch = [{"image": torch.zeros(3, 64, 64, dtype=torch.uint8), "instances": gt}]
    losses = model.train()(batch)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        out = model.eval()([{"image": torch.zeros(3, 64, 64, dtype=torch.uint8)}])
    assert out[0]["instances"].image_size == (64, 64)


def test_standard_roi_heads_without_proposals():
    heads = _tiny_roi_heads().eval()
    features = {"p2": torch.randn(1, 8, 16, 16), "p3": torch.randn(1, 8, 8, 8)}
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    results, _ = heads(images, features, [_proposals((64, 64), [])])
    assert len(results[0]) == 0 and results[0].pred_boxes.tensor.shape == (0, 4)


def test_select_foreground_proposals():
    p = _proposals((10, 10), [[0, 0, 5, 5], [1, 1, 6, 6], [2, 2, 7, 7], [3, 3, 8, 8]])
    p.gt_classes = torch.tensor([0, 2, -1, 1])
    fg, masks = select_foreground_proposals([p], bg_label=2)
    assert masks[0].tolist() == [True, False, False, True]
    assert fg[0].gt_classes.tolist() == [0, 1]
    assert fg[0].proposal_boxes.tensor[:, 0].tolist() == [0.0, 3.0]


@pytest.mark.parametrize("loss_type", ["smooth_l1", "giou"])
@pytest.mark.parametrize("agnostic", [False, True])
def test_box_reg_loss_variants(loss_type, agnostic):
    torch.manual_seed(0)
    layer = FastRCNNOutputLayers(
        8,
        box2box_transform=Box2BoxTransform((10.0, 10.0, 5.0, 5.0)),
        num_classes=2,
        cls_agnostic_bbox_reg=agnostic,
        box_reg_loss_type=loss_type,
        loss_weight={"loss_box_reg": 2.0},
    )
    assert layer.bbox_pred.out_features == (4 if agnostic else 8)
    p = _proposals((40, 40), [[0, 0, 10, 10], [5, 5, 20, 20], [0, 0, 30, 30]])
    p.gt_classes = torch.tensor([1, 2, 0])
    p.gt_boxes = Boxes(torch.tensor([[0.0, 0, 10, 10], [0, 0, 1, 1], [2, 2, 28, 31]]))
    scores, deltas = layer(torch.randn(3, 8))
    losses = layer.losses((scores, torch.zeros_like(deltas)), [p])
    # Zero deltas: proposal 0 already equals its GT, so only the third (fg) proposal costs.
    single = layer.box_reg_loss(
        p.proposal_boxes.tensor[2:],
        p.gt_boxes.tensor[2:],
        deltas.new_zeros(1, deltas.shape[1]),
        p.gt_classes[2:],
    )
    torch.testing.assert_close(losses["loss_box_reg"], 2.0 * single / 3)
    assert losses["loss_box_reg"] > 0
