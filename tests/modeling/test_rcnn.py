import json
import logging
import os

import pytest
import torch
from torch import nn

from d2lite.config import configurable, get_cfg
from d2lite.layers import ShapeSpec
from d2lite.model_zoo import get_config
from d2lite.modeling import (
    BACKBONE_REGISTRY,
    META_ARCH_REGISTRY,
    Backbone,
    GeneralizedRCNN,
    ProposalNetwork,
    StandardROIHeads,
    build_model,
    resolve_device,
)
from d2lite.modeling.meta_arch import build as meta_arch_build
from d2lite.structures import Boxes, Instances
from d2lite.utils.events import EventStorage

FIXTURE = os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "detectron2_R50_FPN_10cls_state_dict_shapes.json"
)
LOSS_KEYS = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}


def tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    return cfg


def make_input(height, width, boxes, classes, out_size=None):
    inst = Instances((height, width))
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.tensor(classes, dtype=torch.int64)
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    out_h, out_w = out_size or (height, width)
    return {"image": image, "instances": inst, "height": out_h, "width": out_w}


def two_images():
    # Different sizes, the second without ground truth.
    return [
        make_input(64, 88, [[10, 12, 40, 50], [50, 5, 80, 30]], [0, 1]),
        make_input(72, 64, [], []),
    ]


def test_tiny_forward_backward():
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    assert isinstance(model, GeneralizedRCNN) and model.device == torch.device("cpu")
    model.train()
    losses = model(two_images())
    assert set(losses) == LOSS_KEYS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name in (
        "backbone.stage1.0.0.weight",
        "proposal_generator.rpn_head.conv.weight",
        "roi_heads.box_head.fc1.weight",
        "roi_heads.box_predictor.cls_score.weight",
        "roi_heads.box_predictor.bbox_pred.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_tiny_inference_rescaled_to_requested_size():
    torch.manual_seed(0)
    model = build_model(tiny_cfg()).eval()
    images = [torch.randint(0, 256, s, dtype=torch.uint8) for s in [(3, 64, 88), (3, 72, 64)]]
    inputs = [{"image": images[0], "height": 128, "width": 176}, {"image": images[1]}]
    with torch.no_grad():
        outputs = model(inputs)
    assert len(outputs) == 2 and set(outputs[0]) == {"instances"}
    first, second = outputs[0]["instances"], outputs[1]["instances"]
    assert first.image_size == (128, 176) and second.image_size == (72, 64)
    assert set(first.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
    assert first.pred_classes.dtype == torch.int64 and first.scores.dtype == torch.float32
    assert len(first) <= model.roi_heads.box_predictor.test_topk_per_image
    boxes = first.pred_boxes.tensor
    assert (boxes[:, 2] <= 176).all() and (boxes[:, 3] <= 128).all() and (boxes >= 0).all()
    # Alone (so that the padding is the same), raw results times 2 are the rescaled ones.
    with torch.no_grad():
        raw = model.inference(inputs[:1], do_postprocess=False)[0]
        scaled = model.inference(inputs[:1])[0]["instances"]
    torch.testing.assert_close(raw.pred_boxes.tensor * 2, scaled.pred_boxes.tensor)
    torch.testing.assert_close(raw.scores, scaled.scores)


def test_input_errors_name_the_problem():
    model = build_model(tiny_cfg())
    model.train()
    batch = two_images()
    del batch[1]["instances"]
    with pytest.raises(KeyError, match="input 1 has no 'instances'"):
        model(batch)
    expected = r"'image' must be a \(C, H, W\) tensor, got \(1, 3, 8, 8\)"
    with pytest.raises(ValueError, match=expected):
        model([{"image": torch.zeros(1, 3, 8, 8), "instances": Instances((8, 8))}])
    model.eval()
    with pytest.raises(KeyError, match="input 0 has no 'image'"):
        model([{"file_name": "x.jpg"}])


def test_pixel_stats_are_non_persistent_buffers():
    model = build_model(tiny_cfg())
    keys = model.state_dict().keys()
    assert "pixel_mean" not in keys and "pixel_std" not in keys
    assert model.pixel_mean.shape == (3, 1, 1)
    assert not any("anchor" in k and "cell" in k for k in keys)


def test_r50_fpn_state_dict_matches_detectron2():
    cfg = get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 10
    model = build_model(cfg)
    with open(FIXTURE) as f:
        reference = json.load(f)
    actual = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(reference) - set(actual)) == []
    assert sorted(set(actual) - set(reference)) == []
    assert {k: v for k, v in actual.items() if reference[k] != v} == {}


@pytest.mark.parametrize(
    "name, arch, num_keys",
    [
        ("faster_rcnn_R_50_FPN_3x", GeneralizedRCNN, 295),
        ("faster_rcnn_R_101_FPN_3x", GeneralizedRCNN, 550),
        ("faster_rcnn_X_101_32x8d_FPN_3x", GeneralizedRCNN, 550),
        ("rpn_R_50_FPN_1x", ProposalNetwork, 287),
    ],
)
def test_coco_configs_build(name, arch, num_keys):
    cfg = get_config(f"COCO-Detection/{name}.yaml")
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    assert type(model) is arch
    state = model.state_dict()
    assert len(state) == num_keys
    if arch is GeneralizedRCNN:
        assert state["roi_heads.box_predictor.cls_score.weight"].shape == (81, 1024)
        assert state["roi_heads.box_predictor.bbox_pred.weight"].shape == (320, 1024)
    assert state["proposal_generator.rpn_head.anchor_deltas.weight"].shape == (12, 256, 1, 1)


def test_proposal_network_tiny():
    cfg = tiny_cfg()
    cfg.MODEL.META_ARCHITECTURE = "ProposalNetwork"
    model = build_model(cfg)
    model.train()
    losses = model(two_images())
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"}
    model.eval()
    with torch.no_grad():
        image = torch.zeros(3, 64, 64, dtype=torch.uint8)
        out = model([{"image": image, "height": 32, "width": 32}])
    proposals = out[0]["proposals"]
    assert proposals.image_size == (32, 32)
    assert (proposals.proposal_boxes.tensor <= 32).all()
    assert len(proposals) <= cfg.MODEL.RPN.POST_NMS_TOPK_TEST


def test_resolve_device(caplog, monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="MODEL.DEVICE='gpu0'"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(meta_arch_build, "_warned_devices", set())
    with caplog.at_level(logging.WARNING, logger="d2lite.modeling.meta_arch.build"):
        assert resolve_device("cuda") == torch.device("cpu")
        assert resolve_device("cuda") == torch.device("cpu")
    warnings = [r for r in caplog.records if "CUDA is not available" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_on_cuda():
    cfg = tiny_cfg()
    cfg.MODEL.DEVICE = "cuda"
    model = build_model(cfg)
    assert model.device.type == "cuda"
    model.train()
    losses = model(two_images())
    assert set(losses) == LOSS_KEYS
    assert all(v.is_cuda and torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 64, 64, dtype=torch.uint8)}])
    assert out[0]["instances"].pred_boxes.tensor.device.type == "cuda"


@BACKBONE_REGISTRY.register()
class UserToyBackbone(Backbone):
    """What a user script writes: one strided conv, one output named "feat"."""

    def __init__(self, cfg, input_shape: ShapeSpec) -> None:
        super().__init__()
        self.conv = nn.Conv2d(input_shape.channels, 16, kernel_size=3, stride=4, padding=1)
        self._out_features = ["feat"]
        self._out_feature_channels = {"feat": 16}
        self._out_feature_strides = {"feat": 4}

    def forward(self, x):
        return {"feat": torch.relu(self.conv(x))}


def test_user_backbone_selected_by_name_trains():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.MODEL.BACKBONE.NAME = "UserToyBackbone"
    cfg.MODEL.RPN.IN_FEATURES = ["feat"]
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["feat"]
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[16, 32]]
    model = build_model(cfg)
    assert isinstance(model.backbone, UserToyBackbone)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    batch = two_images()
    history = []
    for _ in range(3):
        losses = model(batch)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert all(torch.isfinite(torch.tensor(history)))
    assert model.backbone.conv.weight.grad.abs().sum() > 0


def test_misconfigured_feature_names():
    cfg = tiny_cfg()
    cfg.MODEL.RPN.IN_FEATURES = ["p4"]
    with pytest.raises(KeyError, match=r"MODEL.RPN.IN_FEATURES names \['p4'\]"):
        build_model(cfg)


def test_unsupported_tasks_are_refused():
    cfg = tiny_cfg()
    cfg.MODEL.MASK_ON = True
    with pytest.raises(ValueError, match="MODEL.MASK_ON=True is not supported"):
        build_model(cfg)


def test_batch_without_any_ground_truth():
    torch.manual_seed(0)
    model = build_model(tiny_cfg()).train()
    losses = model([make_input(64, 64, [], []), make_input(56, 72, [], [])])
    assert set(losses) == LOSS_KEYS
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_box_reg"].item() == 0 and losses["loss_rpn_loc"].item() == 0
    sum(losses.values()).backward()
    assert model.proposal_generator.rpn_head.objectness_logits.weight.grad.abs().sum() > 0


def test_precomputed_proposals():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "PrecomputedProposals"
    model = build_model(cfg)
    assert model.proposal_generator is None
    batch = two_images()
    for x in batch:
        h, w = x["image"].shape[-2:]
        x["proposals"] = Instances(
            (h, w),
            proposal_boxes=Boxes(torch.tensor([[0.0, 0, 30, 30], [20, 20, 60, 50]])),
            objectness_logits=torch.zeros(2),
        )
    losses = model.train()(batch)
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    with torch.no_grad():
        out = model.eval()(batch)
    assert len(out) == 2 and out[1]["instances"].image_size == (72, 64)
    del batch[0]["proposals"]
    with pytest.raises(KeyError, match="'proposals'"):
        model(batch)


def test_autocast_bfloat16_on_cpu():
    torch.manual_seed(0)
    model = build_model(tiny_cfg()).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(two_images())
    assert set(losses) == LOSS_KEYS
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        instances = model(two_images())[0]["instances"]
    assert instances.scores.dtype == torch.float32
    assert instances.pred_boxes.tensor.dtype == torch.float32


def test_meta_archs_built_from_cfg_like_detectron2():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = GeneralizedRCNN(cfg)
    assert isinstance(model.roi_heads, StandardROIHeads) and model.input_format == "BGR"
    assert GeneralizedRCNN(cfg, vis_period=5).vis_period == 5  # an explicit kwarg wins
    rpn_only = ProposalNetwork(cfg)
    assert not hasattr(rpn_only, "roi_heads")
    by_hand = GeneralizedRCNN(
        backbone=model.backbone,
        proposal_generator=model.proposal_generator,
        roi_heads=model.roi_heads,
        pixel_mean=[0.0, 0.0, 0.0],
        pixel_std=[1.0, 1.0, 1.0],
    )
    assert by_hand.pixel_mean.sum() == 0 and by_hand.input_format is None


@META_ARCH_REGISTRY.register()
class SimpleConfigurableModel(nn.Module):
    """Detectron2's tests/test_engine.py model: @configurable, from_config(cfg) returns {}."""

    @configurable
    def __init__(self, width=20):
        super().__init__()
        self.mod = nn.Linear(10, width)

    @classmethod
    def from_config(cls, cfg):
        return {}

    def forward(self, x):
        return {"loss": x.sum() + sum(p.mean() for p in self.parameters())}


@META_ARCH_REGISTRY.register()
class OldStyleModel(nn.Module):
    """A Detectron2-era meta-architecture: ``__init__(cfg)``, no from_config."""

    def __init__(self, cfg):
        super().__init__()
        self.mod = nn.Linear(2, cfg.MODEL.ROI_HEADS.NUM_CLASSES)


def test_build_model_takes_both_styles_of_user_model():
    cfg = tiny_cfg()
    cfg.MODEL.META_ARCHITECTURE = "SimpleConfigurableModel"
    model = build_model(cfg)
    assert isinstance(model, SimpleConfigurableModel) and model.mod.out_features == 20
    assert set(model(torch.rand(3, 10))) == {"loss"}
    assert SimpleConfigurableModel(width=4).mod.out_features == 4  # a plain call
    cfg.MODEL.META_ARCHITECTURE = "OldStyleModel"
    assert build_model(cfg).mod.out_features == 2


def _sampled_per_image(storage):
    latest = {k: v for k, (v, _) in storage.latest().items()}
    rpn = latest["rpn/num_pos_anchors"] + latest["rpn/num_neg_anchors"]
    return rpn, latest["roi_head/num_fg_samples"] + latest["roi_head/num_bg_samples"]


def test_training_samples_each_image_by_iteration_and_id_whatever_the_batch():
    # What makes 2 processes of 1 image train as 1 process of 2 (DDP): an image's sampled
    # anchors and proposals must not depend on the other images of its batch.
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = build_model(cfg).train()
    # Larger logits than the init's, so that which anchors and proposals are sampled shows.
    nn.init.normal_(model.proposal_generator.rpn_head.objectness_logits.weight, std=1.0)
    nn.init.normal_(model.roi_heads.box_predictor.cls_score.weight, std=1.0)
    a = {**make_input(64, 64, [[10, 12, 40, 50]], [0]), "image_id": 3}
    b = {**make_input(64, 64, [[20, 5, 60, 30], [5, 30, 30, 60]], [1, 0]), "image_id": "b.jpg"}
    state = torch.get_rng_state()
    with EventStorage(start_iter=7) as storage:
        pair = model([a, b])
        # The batch sizes are filled, so the per-batch normalisation is the mean over images.
        assert _sampled_per_image(storage) == (64, 64)
        alone = [model([a]), model([b])]
        assert _sampled_per_image(storage) == (64, 64)
        again = model([a, b])
        storage.iter = 8
        later = model([a, b])
    assert torch.equal(torch.get_rng_state(), state)
    for k in LOSS_KEYS:
        torch.testing.assert_close(pair[k], (alone[0][k] + alone[1][k]) / 2)
        torch.testing.assert_close(pair[k], again[k], rtol=0, atol=0)
    assert pair["loss_rpn_cls"] != later["loss_rpn_cls"]


def test_training_without_trainer_or_image_ids_samples_from_the_global_rng():
    # Detectron2's golden-loss tests and unit tests rely on torch.manual_seed.
    torch.manual_seed(0)
    model = build_model(tiny_cfg()).train()
    batch = [make_input(64, 64, [[10, 12, 40, 50]], [0]), make_input(64, 64, [], [])]
    with_ids = [{**x, "image_id": i} for i, x in enumerate(batch)]
    for inputs, storage in ((with_ids, None), (batch, EventStorage())):
        losses = []
        for _ in range(2):
            torch.manual_seed(5)
            if storage is None:
                losses.append(model(inputs))
            else:
                with storage:
                    losses.append(model(inputs))
            assert not torch.equal(torch.get_rng_state(), torch.manual_seed(5).get_state())
        for k in LOSS_KEYS:
            torch.testing.assert_close(losses[0][k], losses[1][k], rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_seeded_sampling_on_cuda_draws_on_the_labels_device():
    cfg = tiny_cfg()
    cfg.MODEL.DEVICE = "cuda"
    model = build_model(cfg).train()
    batch = [{**x, "image_id": i} for i, x in enumerate(two_images())]
    cuda_state = torch.cuda.get_rng_state()
    with EventStorage():
        first, again = model(batch), model(batch)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_state)
    for k in LOSS_KEYS:
        assert first[k].is_cuda and torch.isfinite(first[k])
        torch.testing.assert_close(first[k], again[k])
