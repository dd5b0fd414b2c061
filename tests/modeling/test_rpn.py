import math

import pytest
import torch
from torch import nn

from d2lite.config import configurable, get_cfg
from d2lite.layers import ShapeSpec
from d2lite.modeling.proposal_generator import (
    RPN,
    RPN_HEAD_REGISTRY,
    StandardRPNHead,
    add_ground_truth_to_proposals,
    build_proposal_generator,
    build_rpn_head,
    find_top_rpn_proposals,
)
from d2lite.modeling.proposal_generator.proposal_utils import (
    add_ground_truth_to_proposals_single_image,
)
from d2lite.modeling.sampling import sampling_generators
from d2lite.structures import Boxes, ImageList, Instances
from d2lite.utils.events import EventStorage


def _tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    return cfg


def _gt(image_size, boxes):
    inst = Instances(image_size)
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.zeros(len(inst.gt_boxes), dtype=torch.int64)
    return inst


def test_head_shapes_names_and_init():
    head = StandardRPNHead(in_channels=8, num_anchors=3)
    logits, deltas = head([torch.randn(2, 8, 10, 12), torch.randn(2, 8, 5, 6)])
    assert [x.shape for x in logits] == [(2, 3, 10, 12), (2, 3, 5, 6)]
    assert [x.shape for x in deltas] == [(2, 12, 10, 12), (2, 12, 5, 6)]
    assert sorted(head.state_dict()) == [
        "anchor_deltas.bias",
        "anchor_deltas.weight",
        "conv.bias",
        "conv.weight",
        "objectness_logits.bias",
        "objectness_logits.weight",
    ]
    assert head.conv.bias.abs().sum() == 0
    assert abs(head.conv.weight.std().item() - 0.01) < 0.002
    deep = StandardRPNHead(in_channels=8, num_anchors=3, conv_dims=[16, -1])
    assert deep.conv.conv0.weight.shape == (16, 8, 3, 3)
    assert deep.conv.conv1.weight.shape == (16, 16, 3, 3)
    with pytest.raises(ValueError, match="conv_dims"):
        StandardRPNHead(in_channels=8, num_anchors=3, conv_dims=[0])


def test_find_top_rpn_proposals_hand_made():
    boxes = torch.tensor(
        [[0.0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [40, 40, 41, 41], [50, 0, 70, 10]]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.1])
    out = find_top_rpn_proposals(
        [boxes[None, :3], boxes[None, 3:]],
        [scores[None, :3], scores[None, 3:]],
        [(32, 64)],
        nms_thresh=0.5,
        pre_nms_topk=2,
        post_nms_topk=10,
        min_box_size=2.0,
        training=False,
    )
    # level 0 keeps its top 2 (boxes 0, 1) and NMS removes 1; level 1 keeps boxes 3, 4, box 3 is
    # too small and box 4 is clipped to x2=64.
    assert len(out) == 1 and out[0].image_size == (32, 64)
    torch.testing.assert_close(
        out[0].proposal_boxes.tensor, torch.tensor([[0.0, 0, 10, 10], [50, 0, 64, 10]])
    )
    torch.testing.assert_close(out[0].objectness_logits, torch.tensor([0.9, 0.1]))


def test_find_top_rpn_proposals_non_finite():
    boxes = torch.tensor([[[0.0, 0, 10, 10], [0, 0, float("nan"), 5]]])
    scores = torch.tensor([[1.0, 2.0]])
    args = ([boxes], [scores], [(20, 20)], 0.7, 10, 10, 0.0)
    out = find_top_rpn_proposals(*args, training=False)
    assert len(out[0]) == 1
    with pytest.raises(FloatingPointError, match="diverged"):
        find_top_rpn_proposals(*args, training=True)


def test_add_ground_truth_to_proposals():
    props = Instances((20, 20))
    props.proposal_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5]]))
    props.objectness_logits = torch.tensor([0.3])
    out = add_ground_truth_to_proposals([_gt((20, 20), [[1, 1, 8, 8]])], [props])
    assert len(out[0]) == 2
    torch.testing.assert_close(out[0].proposal_boxes.tensor[1], torch.tensor([1.0, 1, 8, 8]))
    assert out[0].objectness_logits[1].item() == pytest.approx(math.log(1e10), rel=1e-3)
    empty = add_ground_truth_to_proposals([_gt((20, 20), [])], [props])
    assert len(empty[0]) == 1


def _build_rpn():
    cfg = _tiny_cfg()
    shapes = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}
    rpn = build_proposal_generator(cfg, shapes)
    assert isinstance(rpn, RPN)
    return rpn


def test_label_and_sample_anchors_with_and_without_gt():
    torch.manual_seed(0)
    rpn = _build_rpn()
    features = [torch.zeros(1, 8, 16, 16), torch.zeros(1, 8, 8, 8)]
    anchors = rpn.anchor_generator(features)
    gt = [_gt((64, 64), [[8, 8, 24, 24], [30, 30, 62, 62]]), _gt((64, 64), [])]
    labels, matched = rpn.label_and_sample_anchors(anchors, gt)
    num_anchors = 16 * 16 * 3 + 8 * 8 * 3
    assert [x.shape for x in labels] == [(num_anchors,), (num_anchors,)]
    assert (labels[0] == 1).sum() >= 2  # each GT box gets its best anchors
    assert ((labels[0] >= 0).sum()) == rpn.batch_size_per_image
    assert (labels[1] == 1).sum() == 0 and (labels[1] == 0).sum() == rpn.batch_size_per_image
    assert matched[1].abs().sum() == 0
    pos = labels[0] == 1
    ious = torch.stack([matched[0][pos][:, 0] == 8, matched[0][pos][:, 0] == 30]).any(dim=0)
    assert ious.all()


def test_rpn_forward_losses_and_proposals():
    torch.manual_seed(0)
    rpn = _build_rpn().train()
    images = ImageList(torch.zeros(2, 3, 64, 64), [(64, 60), (56, 64)])
    features = {"p2": torch.randn(2, 8, 16, 16), "p3": torch.randn(2, 8, 8, 8)}
    gt = [_gt((64, 60), [[8, 8, 24, 24]]), _gt((56, 64), [])]
    with EventStorage() as storage:
        proposals, losses = rpn(images, features, gt)
        assert "rpn/num_pos_anchors" in storage.histories()
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert rpn.rpn_head.objectness_logits.weight.grad.abs().sum() > 0
    assert [len(p) <= rpn.post_nms_topk[True] for p in proposals] == [True, True]
    assert proposals[0].proposal_boxes.tensor[:, 2].max() <= 60
    assert not proposals[0].proposal_boxes.tensor.requires_grad
    rpn.eval()
    proposals, losses = rpn(images, features)
    assert losses == {} and all(len(p) <= rpn.post_nms_topk[False] for p in proposals)
    assert proposals[1].proposal_boxes.tensor[:, 3].max() <= 56


def test_anchor_boundary_thresh_ignores_anchors_outside_the_image():
    torch.manual_seed(0)
    rpn = _build_rpn()
    rpn.anchor_boundary_thresh = 0
    anchors = rpn.anchor_generator([torch.zeros(1, 8, 16, 16), torch.zeros(1, 8, 8, 8)])
    labels, _ = rpn.label_and_sample_anchors(anchors, [_gt((64, 64), [[8, 8, 24, 24]])])
    inside = Boxes.cat(anchors).inside_box((64, 64), 0)
    assert (labels[0][~inside] == -1).all()
    assert (labels[0][inside] >= 0).any()


_SHAPES = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}


def test_rpn_and_head_built_from_cfg_like_detectron2():
    cfg = _tiny_cfg()
    rpn = RPN(cfg, _SHAPES)
    assert rpn.in_features == ["p2", "p3"] and rpn.post_nms_topk == {True: 100, False: 50}
    assert RPN(cfg, _SHAPES, nms_thresh=0.3).nms_thresh == 0.3  # an explicit kwarg wins
    head = StandardRPNHead(cfg, list(_SHAPES.values()))
    assert head.conv.in_channels == 8 and head.objectness_logits.out_channels == 3
    by_hand = RPN(
        in_features=["p2"],
        head=StandardRPNHead(in_channels=8, num_anchors=1),
        anchor_generator=rpn.anchor_generator,
        anchor_matcher=rpn.anchor_matcher,
        box2box_transform=rpn.box2box_transform,
        batch_size_per_image=16,
        positive_fraction=0.5,
        pre_nms_topk=(10, 10),
        post_nms_topk=(5, 5),
    )
    assert by_hand.batch_size_per_image == 16 and by_hand.nms_thresh == 0.7


@RPN_HEAD_REGISTRY.register()
class OldStyleRPNHead(StandardRPNHead):
    """A Detectron2-era user head: ``__init__(cfg, input_shape)`` passed up unchanged."""

    def __init__(self, cfg, input_shape):
        super().__init__(cfg, input_shape)
        self.num_levels = len(input_shape)


@RPN_HEAD_REGISTRY.register()
class ConfigurableRPNHead(nn.Module):
    """A user head with its own ``@configurable`` constructor and ``from_config``."""

    @configurable
    def __init__(self, *, in_channels: int, num_anchors: int):
        super().__init__()
        self.objectness_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.anchor_deltas = nn.Conv2d(in_channels, num_anchors * 4, 1)

    @classmethod
    def from_config(cls, cfg, input_shape):
        num_anchors = len(cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS[0])
        return {"in_channels": input_shape[0].channels, "num_anchors": num_anchors}

    def forward(self, features):
        logits = [self.objectness_logits(x) for x in features]
        return logits, [self.anchor_deltas(x) for x in features]


@pytest.mark.parametrize("head_name", ["OldStyleRPNHead", "ConfigurableRPNHead"])
def test_build_rpn_head_takes_both_styles_of_user_head(head_name):
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    cfg.MODEL.RPN.HEAD_NAME = head_name
    rpn = build_proposal_generator(cfg, _SHAPES)
    assert type(rpn.rpn_head).__name__ == head_name
    assert build_rpn_head(cfg, list(_SHAPES.values())).objectness_logits.out_channels == 3
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    features = {"p2": torch.randn(1, 8, 16, 16), "p3": torch.randn(1, 8, 8, 8)}
    _, losses = rpn.train()(images, features, [_gt((64, 64), [[8, 8, 40, 40]])])
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"}
    if head_name == "OldStyleRPNHead":
        assert rpn.rpn_head.num_levels == 2


def test_add_ground_truth_keeps_the_proposals_fields():
    props = Instances((20, 20))
    props.proposal_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5]]))
    props.objectness_logits = torch.tensor([0.3])
    props.custom = torch.tensor([7])
    gt = _gt((20, 20), [[1, 1, 8, 8]])
    # The proposals carry a field the ground truth lacks: Detectron2 asserts.
    with pytest.raises(AssertionError, match="'custom'"):
        add_ground_truth_to_proposals([gt], [props])
    with pytest.raises(AssertionError, match="'custom'"):
        add_ground_truth_to_proposals([gt.gt_boxes], [props])
    gt.custom = torch.tensor([9])
    out = add_ground_truth_to_proposals([gt], [props])[0]
    assert out.custom.tolist() == [7, 9]
    # Ground-truth fields the proposals lack (gt_boxes, gt_classes) are dropped.
    assert set(out.get_fields()) == {"proposal_boxes", "objectness_logits", "custom"}
    with pytest.raises(ValueError, match="2 ground-truth lists for 1 images"):
        add_ground_truth_to_proposals([gt, gt], [props])


def test_add_ground_truth_single_image_from_boxes():
    props = Instances((20, 20))
    props.proposal_boxes = Boxes(torch.zeros(0, 4))
    props.objectness_logits = torch.zeros(0)
    out = add_ground_truth_to_proposals_single_image(Boxes(torch.tensor([[1.0, 1, 4, 4]])), props)
    assert len(out) == 1 and out.image_size == (20, 20)
    assert out.objectness_logits.item() == pytest.approx(math.log(1e10), rel=1e-3)


def test_find_top_rpn_proposals_drops_infinite_logits_at_test_time():
    torch.manual_seed(0)
    boxes = torch.rand(3, 27, 4) * 5
    boxes[..., 2:] += 5  # x1 > x0 and y1 > y0
    logits = torch.rand(3, 27)
    logits[1, 3:5] = float("inf")
    logits[0, 0] = float("nan")
    out = find_top_rpn_proposals([boxes], [logits], [(10, 10)] * 3, 0.5, 1000, 1000, 0, False)
    assert all(torch.isfinite(p.objectness_logits).all() for p in out)
    assert len(out) == 3 and 0 < len(out[1]) <= 25
    with pytest.raises(FloatingPointError):
        find_top_rpn_proposals([boxes], [logits], [(10, 10)] * 3, 0.5, 1000, 1000, 0, True)


def test_anchor_sampling_uses_each_image_s_generator_when_given():
    torch.manual_seed(0)
    rpn = _build_rpn()
    features = [torch.zeros(1, 8, 16, 16), torch.zeros(1, 8, 8, 8)]
    anchors = rpn.anchor_generator(features)
    gt_a, gt_b = _gt((64, 64), [[8, 8, 24, 24]]), _gt((64, 64), [[30, 30, 62, 62]])

    def labels(gt, seeds):
        with sampling_generators([torch.Generator().manual_seed(s) for s in seeds]):
            return rpn.label_and_sample_anchors(anchors, gt)[0]

    state = torch.get_rng_state()
    pair = labels([gt_a, gt_b], [1, 2])
    assert torch.equal(torch.get_rng_state(), state)
    # An image's sample depends on its own generator only, not on the rest of the batch.
    assert torch.equal(pair[0], labels([gt_a], [1])[0])
    assert torch.equal(pair[1], labels([gt_b], [2])[0])
    assert not torch.equal(pair[1], labels([gt_b], [3])[0])
    # Without generators the global RNG draws, as in Detectron2.
    rpn.label_and_sample_anchors(anchors, [gt_a])
    assert not torch.equal(torch.get_rng_state(), state)
