from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from d2lite.config import configurable, get_cfg
from d2lite.layers import CNNBlockBase, FrozenBatchNorm2d, ShapeSpec
from d2lite.model_zoo import get_config, get_config_file
from d2lite.modeling.backbone import (
    BACKBONE_REGISTRY,
    FPN,
    Backbone,
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    LastLevelMaxPool,
    ResNet,
    ResNetBlockBase,
    TinyBackbone,
    build_backbone,
    build_resnet_backbone,
    build_resnet_fpn_backbone,
    make_stage,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "detectron2_R50_FPN_10cls_state_dict_shapes.json"


def _resnet_cfg(depth: int, **resnets):
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    if depth < 50:
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    for key, value in resnets.items():
        cfg.MODEL.RESNETS[key] = value
    return cfg


def _assert_output_shape_matches(backbone, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = backbone(x)
    specs = backbone.output_shape()
    assert set(out) == set(specs)
    for name, feature in out.items():
        assert feature.shape[1] == specs[name].channels, name
        assert feature.shape[-2] == math.ceil(x.shape[-2] / specs[name].stride), name
        assert feature.shape[-1] == math.ceil(x.shape[-1] / specs[name].stride), name
    return out


def test_r50_fpn_state_dict_matches_detectron2():
    expected = {
        k: tuple(v) for k, v in json.loads(FIXTURE.read_text()).items() if k.startswith("backbone.")
    }
    cfg = get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
    actual = {f"backbone.{k}": tuple(v.shape) for k, v in backbone.state_dict().items()}
    assert sorted(set(expected) - set(actual)) == []
    assert sorted(set(actual) - set(expected)) == []
    assert actual == expected


def test_r50_fpn_forward_outputs_p2_to_p6():
    cfg = get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    backbone = build_backbone(cfg)
    assert isinstance(backbone, FPN)
    assert backbone.size_divisibility == 32
    assert backbone.padding_constraints == {"square_size": 0}
    out = _assert_output_shape_matches(backbone, torch.randn(1, 3, 64, 96))
    assert list(out) == ["p2", "p3", "p4", "p5", "p6"]
    assert {k: s.stride for k, s in backbone.output_shape().items()} == {
        "p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64
    }
    assert all(v.shape[1] == 256 for v in out.values())


@pytest.mark.parametrize(
    "depth, channels, block_type",
    [(18, [64, 128, 256, 512], BasicBlock), (34, [64, 128, 256, 512], BasicBlock)],
)
def test_basic_block_resnets(depth, channels, block_type):
    backbone = build_resnet_backbone(_resnet_cfg(depth), ShapeSpec(channels=3))
    assert isinstance(backbone.res2[0], block_type)
    assert backbone.res2[0].shortcut is None
    assert backbone.res3[0].shortcut is not None
    expected_blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
    assert [len(getattr(backbone, f"res{k}")) for k in range(2, 6)] == expected_blocks
    out = _assert_output_shape_matches(backbone, torch.randn(2, 3, 64, 64))
    assert [out[f"res{k}"].shape[1] for k in range(2, 6)] == channels


def test_r101_block_counts_and_shapes():
    cfg = _resnet_cfg(101, OUT_FEATURES=["res4"])
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    # res5 is not built when nothing asks for it (it lives in the C4 ROI head instead).
    assert backbone.stage_names == ("res2", "res3", "res4")
    assert len(backbone.res4) == 23
    out = _assert_output_shape_matches(backbone, torch.randn(1, 3, 32, 32))
    assert out["res4"].shape == (1, 1024, 2, 2)


def test_resnext_grouped_bottleneck():
    cfg = _resnet_cfg(50, NUM_GROUPS=32, WIDTH_PER_GROUP=4, STRIDE_IN_1X1=False)
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3"]
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    conv2 = backbone.res2[0].conv2
    assert conv2.groups == 32 and conv2.weight.shape == (128, 4, 3, 3)
    # Bottleneck width doubles with every stage.
    assert backbone.res3[0].conv2.weight.shape == (256, 8, 3, 3)
    # STRIDE_IN_1X1=False puts the stride in the 3x3 conv.
    assert backbone.res3[0].conv1.stride == (1, 1) and backbone.res3[0].conv2.stride == (2, 2)
    _assert_output_shape_matches(backbone, torch.randn(1, 3, 64, 64))


def test_x101_32x8d_config_builds():
    cfg = get_config("COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml")
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2"]
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    assert backbone.res2[0].conv2.groups == 32
    assert backbone.res2[0].conv2.weight.shape == (256, 8, 3, 3)


def test_stride_in_1x1_default_and_dilation():
    cfg = _resnet_cfg(50, RES5_DILATION=2)
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    assert backbone.res3[0].conv1.stride == (2, 2)
    assert backbone.res5[0].conv2.dilation == (2, 2)
    assert backbone.output_shape()["res5"].stride == 16
    _assert_output_shape_matches(backbone, torch.randn(1, 3, 64, 64))


def test_freeze_at_2_freezes_stem_and_res2_only():
    cfg = _resnet_cfg(18, NORM="BN")
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    for name, p in backbone.named_parameters():
        frozen = name.startswith(("stem.", "res2."))
        assert p.requires_grad != frozen, name
    assert isinstance(backbone.stem.conv1.norm, FrozenBatchNorm2d)
    assert isinstance(backbone.res2[1].conv2.norm, FrozenBatchNorm2d)
    assert isinstance(backbone.res3[0].conv1.norm, nn.BatchNorm2d)
    backbone(torch.randn(2, 3, 32, 32))["res5"].sum().backward()
    assert backbone.res3[0].conv1.weight.grad is not None
    assert backbone.stem.conv1.weight.grad is None


def test_freeze_at_0_and_frozen_bn_default():
    cfg = _resnet_cfg(18)
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    assert all(p.requires_grad for p in backbone.parameters())
    # The default NORM is FrozenBN: norms have buffers but no parameters.
    assert isinstance(backbone.res4[0].conv1.norm, FrozenBatchNorm2d)
    assert not any(".norm." in name for name, _ in backbone.named_parameters())


@pytest.mark.parametrize("norm, cls", [("GN", nn.GroupNorm), ("BN", nn.BatchNorm2d), ("", None)])
def test_norm_variants(norm, cls):
    cfg = _resnet_cfg(18, NORM=norm)
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    norm_layer = backbone.res3[0].conv1.norm
    assert norm_layer is None if cls is None else isinstance(norm_layer, cls)
    backbone.train()
    out = backbone(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out["res5"]).all()


def test_fpn_norm_gn_and_avg_fuse():
    cfg = get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.FPN.NORM = "GN"
    cfg.MODEL.FPN.FUSE_TYPE = "avg"
    cfg.MODEL.FPN.OUT_CHANNELS = 64
    backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
    assert backbone.fpn_lateral3.bias is None
    assert isinstance(backbone.fpn_output3.norm, nn.GroupNorm)
    _assert_output_shape_matches(backbone, torch.randn(1, 3, 64, 64))


def test_fpn_accepts_unpadded_input():
    stem = BasicStem(3, 16, norm="")
    stages = [
        make_stage(BasicBlock, 1, in_channels=16, out_channels=16, stride=1, norm=""),
        make_stage(BasicBlock, 1, in_channels=16, out_channels=32, stride=2, norm=""),
    ]
    bottom_up = ResNet(stem, stages, out_features=["res2", "res3"])
    top_block = LastLevelMaxPool()
    top_block.in_feature = "p3"
    fpn = FPN(bottom_up, ["res2", "res3"], 8, top_block=top_block)
    out = fpn(torch.randn(1, 3, 36, 52))
    assert out["p2"].shape == (1, 8, 9, 13)
    assert out["p3"].shape == (1, 8, 5, 7)
    assert out["p4"].shape == (1, 8, 3, 4)
    assert fpn.size_divisibility == 8


def test_fpn_rejects_non_doubling_strides():
    stem = BasicStem(3, 16, norm="")
    stages = [
        make_stage(BasicBlock, 1, in_channels=16, out_channels=16, stride=1, norm=""),
        make_stage(BasicBlock, 1, in_channels=16, out_channels=32, stride=2, norm=""),
        make_stage(BasicBlock, 1, in_channels=32, out_channels=64, stride=2, norm=""),
    ]
    bottom_up = ResNet(stem, stages, out_features=["res2", "res4"])
    with pytest.raises(ValueError, match="twice the previous"):
        FPN(bottom_up, ["res2", "res4"], 8)
    with pytest.raises(ValueError, match="not outputs"):
        FPN(bottom_up, ["res3"], 8)


def test_make_stage_per_block_kwargs():
    blocks = make_stage(
        BottleneckBlock, 3, in_channels=8, out_channels=16, bottleneck_channels=4,
        stride_per_block=[2, 1, 1], norm="",
    )
    assert [b.stride for b in blocks] == [2, 1, 1]
    assert blocks[0].shortcut is not None and blocks[1].shortcut is None
    with pytest.raises(ValueError, match="stride_per_block has 2 values for 3 blocks"):
        make_stage(BasicBlock, 3, in_channels=8, out_channels=8, stride_per_block=[1, 1])


def test_make_default_stages_and_classifier():
    stages = ResNet.make_default_stages(18, norm="BN")
    model = ResNet(BasicStem(3, 64), stages, num_classes=5, out_features=["linear", "res5"])
    out = model(torch.randn(2, 3, 32, 32))
    assert out["linear"].shape == (2, 5)
    assert out["res5"].shape == (2, 512, 1, 1)
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNet.make_default_stages(20)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("DEPTH", 42, "MODEL.RESNETS.DEPTH must be one of"),
        ("DEFORM_ON_PER_STAGE", [False, True, False, False], "DEFORM_ON_PER_STAGE"),
        ("RES5_DILATION", 3, "RES5_DILATION must be 1 or 2"),
        ("OUT_FEATURES", ["res6"], "unknown feature 'res6'"),
    ],
)
def test_bad_resnet_config_errors(key, value, message):
    cfg = _resnet_cfg(50)
    cfg.MODEL.RESNETS[key] = value
    with pytest.raises(ValueError, match=message):
        build_resnet_backbone(cfg, ShapeSpec(channels=3))


def test_r18_requires_res2_out_channels_64():
    cfg = _resnet_cfg(18, RES2_OUT_CHANNELS=256)
    with pytest.raises(ValueError, match="RES2_OUT_CHANNELS must be 64 for R18, got 256"):
        build_resnet_backbone(cfg, ShapeSpec(channels=3))


def test_builders_are_registered():
    assert BACKBONE_REGISTRY.get("build_resnet_backbone") is build_resnet_backbone
    assert BACKBONE_REGISTRY.get("build_resnet_fpn_backbone") is build_resnet_fpn_backbone


def test_tiny():
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    backbone = build_backbone(cfg)
    assert isinstance(backbone, TinyBackbone)
    out = _assert_output_shape_matches(backbone, torch.randn(2, 3, 32, 48))
    assert list(out) == ["p2", "p3"]


def test_weight_init_follows_detectron2():
    cfg = get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
    assert backbone.fpn_output2.bias.abs().sum() == 0
    # c2_xavier_fill: kaiming_uniform(a=1) has bound sqrt(3 / fan_in).
    fan_in = 256 * 9
    assert backbone.fpn_output2.weight.abs().max() <= (3 / fan_in) ** 0.5
    # c2_msra_fill: kaiming_normal with fan_out, std sqrt(2 / fan_out).
    weight = backbone.bottom_up.res4[0].conv1.weight
    fan_out = weight.shape[0] * 9
    assert abs(weight.std().item() - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fpn_on_cuda_matches_cpu():
    cfg = get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = backbone(x)
        actual = backbone.cuda()(x.cuda())
    # cuDNN may use TF32 convolutions, so compare relative to the feature's scale.
    for name, feature in expected.items():
        assert (actual[name].cpu() - feature).abs().max() <= 1e-2 * feature.abs().max(), name


def _tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    return cfg


def test_tiny_backbone_from_cfg_or_keywords():
    cfg = _tiny_cfg()
    cfg.MODEL.TINY.OUT_CHANNELS = 8
    from_cfg = TinyBackbone(cfg, ShapeSpec(channels=3))
    by_hand = TinyBackbone(in_channels=3, out_channels=8)
    overridden = TinyBackbone(cfg, ShapeSpec(channels=3), out_channels=4)
    assert from_cfg.output_shape() == by_hand.output_shape()
    assert overridden.output_shape()["p2"].channels == 4
    assert {k: v.shape for k, v in from_cfg.state_dict().items()} == {
        k: v.shape for k, v in by_hand.state_dict().items()
    }


@BACKBONE_REGISTRY.register()
class OldStyleTinyBackbone(TinyBackbone):
    """A Detectron2-era user subclass: ``__init__(cfg, input_shape)`` passed up unchanged."""

    def __init__(self, cfg, input_shape):
        super().__init__(cfg, input_shape)
        self.built_from = cfg.MODEL.BACKBONE.NAME


@BACKBONE_REGISTRY.register()
class ConfigurableToyBackbone(Backbone):
    """A user backbone with its own ``@configurable`` constructor and ``from_config``."""

    @configurable
    def __init__(self, *, in_channels: int, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        self._out_features = ["c1"]
        self._out_feature_channels = {"c1": width}
        self._out_feature_strides = {"c1": 2}

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {"in_channels": input_shape.channels, "width": cfg.MODEL.TINY.OUT_CHANNELS}

    def forward(self, x):
        return {"c1": self.conv(x)}


def test_build_backbone_takes_both_styles_of_user_backbone():
    cfg = _tiny_cfg()
    cfg.MODEL.TINY.OUT_CHANNELS = 6
    cfg.MODEL.BACKBONE.NAME = "OldStyleTinyBackbone"
    old = build_backbone(cfg)
    assert isinstance(old, OldStyleTinyBackbone) and old.built_from == "OldStyleTinyBackbone"
    assert old.output_shape()["p3"] == ShapeSpec(channels=6, stride=8)
    cfg.MODEL.BACKBONE.NAME = "ConfigurableToyBackbone"
    new = build_backbone(cfg, ShapeSpec(channels=1))
    assert isinstance(new, ConfigurableToyBackbone)
    _assert_output_shape_matches(new, torch.zeros(1, 1, 8, 10))
    assert new.conv.out_channels == 6 and new.conv.in_channels == 1
    assert ConfigurableToyBackbone(in_channels=2).conv.out_channels == 4  # a plain call


def _small_r50_cfg(out_features):
    cfg = get_cfg()
    cfg.MODEL.RESNETS.OUT_FEATURES = out_features
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 8
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4
    return cfg


def test_resnet_draws_the_rng_as_detectron2_does():
    # Detectron2 builds all four stages and drops the unused ones, so what a seed gives after
    # the backbone (the RPN and ROI head weights) does not depend on OUT_FEATURES.
    torch.manual_seed(3)
    res4_only = build_resnet_backbone(_small_r50_cfg(["res4"]), ShapeSpec(channels=3))
    after_res4_only = torch.rand(3)
    torch.manual_seed(3)
    full = build_resnet_backbone(_small_r50_cfg(["res4", "res5"]), ShapeSpec(channels=3))
    assert torch.equal(torch.rand(3), after_res4_only)
    assert not hasattr(res4_only, "res5") and hasattr(full, "res5")
    assert torch.equal(res4_only.res4[0].conv2.weight, full.res4[0].conv2.weight)


def test_bottleneck_initialises_its_shortcut_last():
    torch.manual_seed(5)
    block = BottleneckBlock(8, 16, bottleneck_channels=4)
    torch.manual_seed(5)
    # Construction order (each nn.Conv2d draws its default init), then Detectron2's fill order.
    shortcut, conv1, conv2, conv3 = (
        nn.Conv2d(8, 16, 1, bias=False),
        nn.Conv2d(8, 4, 1, bias=False),
        nn.Conv2d(4, 4, 3, bias=False),
        nn.Conv2d(4, 16, 1, bias=False),
    )
    for conv in (conv1, conv2, conv3, shortcut):
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    assert torch.equal(block.conv1.weight, conv1.weight)
    assert torch.equal(block.conv3.weight, conv3.weight)
    assert torch.equal(block.shortcut.weight, shortcut.weight)


def test_resnet_block_base_is_detectron2s_old_name():
    assert ResNetBlockBase is CNNBlockBase
    assert issubclass(BottleneckBlock, ResNetBlockBase)
