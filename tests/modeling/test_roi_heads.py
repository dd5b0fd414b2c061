import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lite.config import configurable, get_cfg
from d2lite.data import MetadataCatalog
from d2lite.layers import ShapeSpec
from d2lite.modeling import build_model
from d2lite.modeling.box_regression import Box2BoxTransform
from d2lite.modeling.roi_heads import (
    ROI_BOX_HEAD_REGISTRY,
    ROI_HEADS_REGISTRY,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    Res5ROIHeads,
    StandardROIHeads,
    build_roi_heads,
    fast_rcnn_inference,
    select_foreground_proposals,
)
from d2lite.modeling.sampling import sampling_generators
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


@pytest.mark.parametrize("loss_type", ["smooth_l1", "giou", "diou", "ciou"])
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


_SHAPES = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}


def _tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    return cfg


def test_roi_heads_and_parts_built_from_cfg_like_detectron2():
    cfg = _tiny_cfg()
    heads = StandardROIHeads(cfg, _SHAPES)
    assert heads.box_in_features == ["p2", "p3"] and heads.num_classes == 2
    assert StandardROIHeads(cfg, _SHAPES, batch_size_per_image=8).batch_size_per_image == 8
    head = FastRCNNConvFCHead(cfg, ShapeSpec(channels=8, height=7, width=7))
    assert head.output_shape == ShapeSpec(channels=64) and len(head.fcs) == 2
    predictor = FastRCNNOutputLayers(cfg, head.output_shape, num_classes=5)
    assert predictor.cls_score.out_features == 6 and predictor.test_topk_per_image == 20
    assert predictor.box2box_transform.weights == (10.0, 10.0, 5.0, 5.0)
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 2
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
    c4 = Res5ROIHeads(cfg, {"res4": ShapeSpec(channels=64, stride=16)})
    assert c4.box_predictor.cls_score.in_features == 128


@ROI_HEADS_REGISTRY.register()
class OldStyleROIHeads(StandardROIHeads):
    """A Detectron2-era user subclass: ``__init__(cfg, input_shape)`` passed up unchanged."""

    def __init__(self, cfg, input_shape):
        super().__init__(cfg, input_shape)
        self.feature_names = sorted(input_shape)


@ROI_HEADS_REGISTRY.register()
class ConfigurableROIHeads(StandardROIHeads):
    """A user subclass with its own ``@configurable`` argument added in ``from_config``."""

    @configurable
    def __init__(self, *, score_floor: float, **kwargs):
        super().__init__(**kwargs)
        self.score_floor = score_floor

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["score_floor"] = cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST
        return ret


@ROI_BOX_HEAD_REGISTRY.register()
class OldStyleBoxHead(FastRCNNConvFCHead):
    """A Detectron2-era user box head built as ``(cfg, input_shape)``."""

    def __init__(self, cfg, input_shape):
        super().__init__(cfg, input_shape)
        self.pooled = input_shape.height


@ROI_BOX_HEAD_REGISTRY.register()
class ConfigurableBoxHead(nn.Module):
    """A user box head with its own ``@configurable`` and ``from_config``."""

    @configurable
    def __init__(self, *, input_shape: ShapeSpec, dim: int):
        super().__init__()
        self.fc = nn.Linear(input_shape.channels * input_shape.height * input_shape.width, dim)

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {"input_shape": input_shape, "dim": cfg.MODEL.ROI_BOX_HEAD.FC_DIM // 2}

    @property
    def output_shape(self):
        return ShapeSpec(channels=self.fc.out_features)

    def forward(self, x):
        return torch.relu(self.fc(x.flatten(1)))


@pytest.mark.parametrize("heads_name", ["OldStyleROIHeads", "ConfigurableROIHeads"])
@pytest.mark.parametrize("box_head_name", ["OldStyleBoxHead", "ConfigurableBoxHead"])
def test_builders_take_both_styles_of_user_heads(heads_name, box_head_name):
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    cfg.MODEL.ROI_HEADS.NAME = heads_name
    cfg.MODEL.ROI_BOX_HEAD.NAME = box_head_name
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.25
    heads = build_roi_heads(cfg, _SHAPES)
    assert type(heads).__name__ == heads_name and type(heads.box_head).__name__ == box_head_name
    if heads_name == "OldStyleROIHeads":
        assert heads.feature_names == ["p2", "p3"]
    else:
        assert heads.score_floor == 0.25
    if box_head_name == "OldStyleBoxHead":
        assert heads.box_head.pooled == 7
    else:
        assert heads.box_predictor.cls_score.in_features == 32
    features = {"p2": torch.randn(1, 8, 16, 16), "p3": torch.randn(1, 8, 8, 8)}
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    props = [_proposals((64, 64), [[0, 0, 20, 20], [8, 8, 40, 50]])]
    _, losses = heads.train()(images, features, props, [_gt((64, 64), [[1, 1, 20, 20]], [1])])
    assert set(losses) == {"loss_cls", "loss_box_reg"}


def test_mask_and_keypoint_switches_warn_and_build_boxes(caplog):
    cfg = _tiny_cfg()
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.KEYPOINT_ON = True
    with caplog.at_level("WARNING", logger="d2lite.modeling.roi_heads.roi_heads"):
        heads = build_roi_heads(cfg, _SHAPES)
    assert isinstance(heads, StandardROIHeads)
    assert "MODEL.MASK_ON=True ignored" in caplog.text and "MODEL.KEYPOINT_ON" in caplog.text


def test_train_on_pred_boxes_replaces_the_returned_proposal_boxes():
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    cfg.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES = True
    heads = build_roi_heads(cfg, _SHAPES).train()
    assert heads.train_on_pred_boxes
    # Every class predicts dx = 1 (deltas are weighted by 10): boxes move right by their width.
    nn.init.zeros_(heads.box_predictor.bbox_pred.weight)
    heads.box_predictor.bbox_pred.bias.data = torch.tensor([10.0, 0, 0, 0] * 2)
    features = {"p2": torch.randn(1, 8, 16, 16), "p3": torch.randn(1, 8, 8, 8)}
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    props = [_proposals((64, 64), [[0, 0, 20, 20], [8, 8, 40, 50]])]
    gt = [_gt((64, 64), [[1, 1, 21, 11]], [1])]
    sampled, _ = heads(images, features, props, gt)
    boxes = sampled[0].proposal_boxes.tensor
    assert not boxes.requires_grad
    expected = torch.tensor([[20.0, 0, 40, 20], [21, 1, 41, 11], [40, 8, 72, 50]])
    order = boxes[:, 0].argsort()
    torch.testing.assert_close(boxes[order], expected)
    heads.train_on_pred_boxes = False
    sampled, _ = heads(images, features, props, gt)
    assert sorted(sampled[0].proposal_boxes.tensor[:, 0].tolist()) == [0.0, 1.0, 8.0]


def _predictor(**kwargs):
    return FastRCNNOutputLayers(
        ShapeSpec(channels=6),
        box2box_transform=Box2BoxTransform((10.0, 10.0, 5.0, 5.0)),
        num_classes=3,
        **kwargs,
    )


def test_sigmoid_cross_entropy_loss_and_probabilities():
    torch.manual_seed(0)
    layer = _predictor(use_sigmoid_ce=True)
    scores, deltas = layer(torch.randn(4, 6))
    p = _proposals((40, 40), [[0, 0, 10, 10]] * 4)
    p.gt_classes = torch.tensor([0, 2, 3, 3])  # 3 is background: every target 0
    p.gt_boxes = Boxes(torch.tensor([[1.0, 1, 11, 11]] * 4))
    losses = layer.losses((scores, deltas), [p])
    targets = torch.zeros(4, 3)
    targets[0, 0] = targets[1, 2] = 1
    expected = F.binary_cross_entropy_with_logits(scores[:, :3], targets, reduction="sum") / 4
    torch.testing.assert_close(losses["loss_cls"], expected)
    probs = layer.predict_probs((scores, deltas), [p])[0]
    torch.testing.assert_close(probs, scores.sigmoid())
    assert layer.sigmoid_cross_entropy_loss(torch.zeros(0, 4), torch.zeros(0).long()).item() == 0


def test_federated_loss_counts_present_and_sampled_classes():
    torch.manual_seed(0)
    weights = torch.tensor([1.0, 0.0, 2.0])  # class 1 is never drawn as a negative
    with pytest.raises(ValueError, match="needs use_sigmoid_ce"):
        _predictor(use_fed_loss=True, get_fed_loss_cls_weights=lambda: weights)
    layer = _predictor(
        use_fed_loss=True,
        use_sigmoid_ce=True,
        get_fed_loss_cls_weights=lambda: weights,
        fed_loss_num_classes=3,
    )
    assert torch.equal(layer.fed_loss_cls_weights, weights)  # a buffer: moves with .to()
    gt_classes = torch.tensor([0, 3, 3])
    # Background (3) counts as present, as in Detectron2: two classes are enough already.
    assert sorted(layer.get_fed_loss_classes(gt_classes, 2, 3, weights).tolist()) == [0, 3]
    assert sorted(layer.get_fed_loss_classes(gt_classes, 3, 3, weights).tolist()) == [0, 2, 3]
    logits = torch.randn(3, 4)
    loss = layer.sigmoid_cross_entropy_loss(logits, torch.tensor([0, 0, 3]))
    # Class 0 is present and class 2 the one drawable negative: class 1 never counts.
    targets = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 0, 0]])
    per_class = F.binary_cross_entropy_with_logits(logits[:, :3], targets, reduction="none")
    torch.testing.assert_close(loss, per_class[:, [0, 2]].sum() / 3)
    with pytest.raises(ValueError, match="2 federated-loss weights for 3 classes"):
        _predictor(
            use_fed_loss=True, use_sigmoid_ce=True, get_fed_loss_cls_weights=lambda: weights[:2]
        )


def test_federated_loss_weights_read_from_the_dataset_metadata():
    cfg = _tiny_cfg()
    cfg.DATASETS.TRAIN = ("_fed_loss_test_set",)
    cfg.MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE = True
    cfg.MODEL.ROI_BOX_HEAD.USE_FED_LOSS = True
    cfg.MODEL.ROI_BOX_HEAD.FED_LOSS_FREQ_WEIGHT_POWER = 0.5
    counts = [{"id": 2, "image_count": 16}, {"id": 1, "image_count": 4}]
    MetadataCatalog.get("_fed_loss_test_set").set(class_image_count=counts)
    try:
        layer = FastRCNNOutputLayers(cfg, ShapeSpec(channels=6))
    finally:
        MetadataCatalog.remove("_fed_loss_test_set")
    assert layer.fed_loss_cls_weights.tolist() == [2.0, 4.0]  # by id, count ** 0.5


def test_forward_with_given_boxes_returns_the_detections():
    cfg = _tiny_cfg()
    detections = Instances((64, 64))
    detections.pred_boxes = Boxes(torch.tensor([[1.0, 2, 30, 40]]))
    detections.pred_classes = torch.tensor([1])
    heads = build_roi_heads(cfg, _SHAPES).eval()
    assert heads.forward_with_given_boxes({}, [detections]) == [detections]
    with pytest.raises(AssertionError):
        heads.forward_with_given_boxes({}, [_proposals((64, 64), [[0, 0, 1, 1]])])
    with pytest.raises(AssertionError):
        heads.train().forward_with_given_boxes({}, [detections])


def test_proposal_sampling_uses_each_image_s_generator_when_given():
    torch.manual_seed(0)
    heads = _tiny_roi_heads()
    heads.batch_size_per_image = 8
    boxes = torch.rand(60, 2) * 40
    boxes = torch.cat([boxes, boxes + 4 + torch.rand(60, 2) * 20], dim=1).tolist()
    props = [_proposals((64, 64), boxes), _proposals((64, 64), boxes)]
    gt = [_gt((64, 64), [[1, 1, 20, 20]], [1]), _gt((64, 64), [[30, 30, 60, 60]], [0])]

    def sample(index, seeds):
        with sampling_generators([torch.Generator().manual_seed(s) for s in seeds]):
            out = heads.label_and_sample_proposals(
                [props[i] for i in index], [gt[i] for i in index]
            )
        return [x.proposal_boxes.tensor for x in out]

    state = torch.get_rng_state()
    pair = sample([0, 1], [1, 2])
    assert torch.equal(torch.get_rng_state(), state)
    assert all(len(x) == 8 for x in pair)
    # An image's sample depends on its own generator only, not on the rest of the batch.
    assert torch.equal(pair[0], sample([0], [1])[0])
    assert torch.equal(pair[1], sample([1], [2])[0])
    assert not torch.equal(pair[1], sample([1], [3])[0])
    heads.label_and_sample_proposals(props[:1], gt[:1])
    assert not torch.equal(torch.get_rng_state(), state)
