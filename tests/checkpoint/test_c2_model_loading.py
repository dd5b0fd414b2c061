from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from d2lite.checkpoint.c2_model_loading import convert_to_model_names
from d2lite.config import get_cfg
from d2lite.layers import ShapeSpec
from d2lite.modeling.backbone import build_resnet_backbone, build_resnet_fpn_backbone


def _cfg(depth: int, norm: str = "FrozenBN", stride_in_1x1: bool = True):
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.NORM = norm
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = stride_in_1x1
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth < 50 else 256
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    return cfg


class _Detector(nn.Module):
    """Puts the ResNet where a GeneralizedRCNN has it: backbone.bottom_up."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
        self.head = nn.Linear(2, 2)


def _to_caffe2_name(name: str) -> str | None:
    """The test's own inverse of the Caffe2 map (running stats are absent in MSRA files)."""
    suffix = {"weight": "s", "bias": "b"}
    m = re.fullmatch(r"stem\.conv1\.(weight|norm\.weight|norm\.bias)", name)
    if m:
        return "conv1_w" if m[1] == "weight" else f"res_conv1_bn_{suffix[m[1][5:]]}"
    m = re.fullmatch(r"res(\d)\.(\d+)\.(conv\d|shortcut)\.(weight|norm\.weight|norm\.bias)", name)
    if m is None:
        return None
    branch = "branch1" if m[3] == "shortcut" else "branch2" + "abc"[int(m[3][-1]) - 1]
    param = "w" if m[4] == "weight" else f"bn_{suffix[m[4][5:]]}"
    return f"res{m[1]}_{m[2]}_{branch}_{param}"


def test_caffe2_names_land_in_the_right_place():
    source = build_resnet_backbone(_cfg(50), ShapeSpec(channels=3))
    blobs = {}
    for name, value in source.state_dict().items():
        c2_name = _to_caffe2_name(name)
        if c2_name is not None:
            blobs[c2_name] = value.numpy() + 0.5
    assert "res2_0_branch1_w" in blobs and "res5_2_branch2c_bn_b" in blobs
    blobs.update(fc1000_w=np.zeros((1000, 2048)), fc1000_b=np.zeros(1000))
    blobs["res2_0_branch2a_w_momentum"] = np.zeros(1)

    model = _Detector(_cfg(50))
    converted = convert_to_model_names(blobs, model.state_dict().keys())
    assert not any("fc1000" in k or "momentum" in k for k in converted)
    assert isinstance(converted["backbone.bottom_up.res3.1.conv2.weight"], np.ndarray)
    np.testing.assert_array_equal(
        converted["backbone.bottom_up.res4.0.shortcut.norm.bias"],
        source.res4[0].shortcut.norm.bias.numpy() + 0.5,
    )
    np.testing.assert_array_equal(converted["backbone.bottom_up.res2.0.conv1.norm.running_var"], 1)
    tensors = {k: torch.as_tensor(v) for k, v in converted.items()}
    result = model.load_state_dict(tensors, strict=False)
    assert result.unexpected_keys == []
    assert all(k.startswith(("backbone.fpn_", "head.")) for k in result.missing_keys)
    torch.testing.assert_close(
        model.backbone.bottom_up.stem.conv1.weight, source.stem.conv1.weight + 0.5
    )
    torch.testing.assert_close(
        model.backbone.bottom_up.res5[2].conv3.norm.weight, source.res5[2].conv3.norm.weight + 0.5
    )


def test_torchvision_resnet18_loads_into_bn_resnet():
    tv = torchvision.models.resnet18(weights=None)
    model = _Detector(_cfg(18, norm="BN"))
    converted = convert_to_model_names(tv.state_dict(), model.state_dict().keys())
    assert not any(k.startswith("fc.") or "num_batches_tracked" in k for k in converted)
    result = model.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    assert all(
        k.startswith(("backbone.fpn_", "head.")) or k.endswith("num_batches_tracked")
        for k in result.missing_keys
    )
    bottom_up = model.backbone.bottom_up
    torch.testing.assert_close(bottom_up.res3[0].shortcut.weight, tv.layer2[0].downsample[0].weight)
    torch.testing.assert_close(bottom_up.res5[1].conv2.norm.bias, tv.layer4[1].bn2.bias)
    torch.testing.assert_close(bottom_up.stem.conv1.norm.running_var, tv.bn1.running_var)


def test_torchvision_resnet50_features_match_torchvision():
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None).eval()
    with torch.no_grad():
        for module in tv.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    cfg = _cfg(50, stride_in_1x1=False)
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    ours = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    converted = convert_to_model_names(tv.state_dict(), ours.state_dict().keys())
    result = ours.load_state_dict(converted, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []

    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = nn.Sequential(*list(tv.children())[:-2])(x)
        actual = ours(x)["res5"]
    # FrozenBN folds the statistics into one affine map, so float rounding differs from BN's.
    assert actual.shape == expected.shape == (1, 2048, 2, 2)
    # The conv algorithm (and so the rounding) oneDNN picks varies with load and thread count.
    assert (actual - expected).abs().max() <= 1e-3 * expected.abs().max()


def test_detectron2_names_pass_through_or_get_prefixed():
    model = _Detector(_cfg(18))
    keys = model.state_dict().keys()
    full = {"backbone.bottom_up.stem.conv1.weight": torch.ones(1), "head.bias": torch.zeros(2)}
    assert convert_to_model_names(full, keys) == full

    bare = {
        "stem.conv1.weight": torch.ones(1),
        "res2.0.conv1.norm.bias": np.zeros(3),
        "stem.fc.weight": torch.ones(1),
    }
    converted = convert_to_model_names(bare, keys)
    assert set(converted) >= {
        "backbone.bottom_up.stem.conv1.weight", "backbone.bottom_up.res2.0.conv1.norm.bias"
    }
    assert not any("fc" in k for k in converted)
    assert isinstance(converted["backbone.bottom_up.res2.0.conv1.norm.bias"], np.ndarray)


def test_bare_resnet_without_unique_target_is_an_error():
    blobs = {"conv1_w": np.zeros((64, 3, 7, 7), dtype=np.float32)}
    with pytest.raises(ValueError, match="model has no ResNet"):
        convert_to_model_names(blobs, ["head.weight"])
    two = ["a.stem.conv1.weight", "b.stem.conv1.weight"]
    with pytest.raises(ValueError, match=r"ResNets at \['a.', 'b.'\]"):
        convert_to_model_names(blobs, two)


def test_unknown_caffe2_blobs_keep_their_names(caplog):
    blobs = {"conv1_w": np.zeros(1), "rpn_cls_logits_w": np.zeros(1)}
    with caplog.at_level("WARNING"):
        converted = convert_to_model_names(blobs, ["stem.conv1.weight"])
    assert set(converted) == {"stem.conv1.weight", "rpn_cls_logits_w"}
    assert "rpn_cls_logits_w" in caplog.text


def test_res5_of_a_c4_model_goes_to_the_roi_heads():
    from d2lite.config import get_cfg
    from d2lite.modeling import build_model

    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = 50
    model = build_model(cfg)  # Detectron2's defaults: R50-C4 with Res5ROIHeads
    keys = model.state_dict().keys()
    bare = {"stem.conv1.weight": torch.ones(1), "res4.0.conv1.weight": torch.ones(1),
            "res5.0.conv1.weight": torch.ones(1), "res5.2.conv3.norm.bias": torch.ones(1)}
    converted = convert_to_model_names(bare, keys)
    assert set(converted) == {
        "backbone.stem.conv1.weight", "backbone.res4.0.conv1.weight",
        "roi_heads.res5.0.conv1.weight", "roi_heads.res5.2.conv3.norm.bias",
    }
    assert set(converted) <= set(keys)


def _nested_model() -> nn.Module:
    model = nn.Module()
    model.block1 = nn.Module()
    model.block1.layer1 = nn.Linear(2, 3)
    model.layer2 = nn.Linear(3, 2)
    model.res = nn.Module()
    model.res.layer2 = nn.Linear(3, 2)
    return model


def _short_names() -> dict[str, torch.Tensor]:
    return {
        "layer1.weight": torch.rand(3, 2), "layer1.bias": torch.rand(3),
        "layer2.weight": torch.rand(2, 3), "layer2.bias": torch.rand(2),
        "res.layer2.weight": torch.rand(2, 3), "res.layer2.bias": torch.rand(2),
        "other.thing": torch.rand(4),
    }


@pytest.mark.parametrize("wrap", [False, True])
def test_align_takes_the_longest_dotted_suffix(wrap, caplog):
    from d2lite.checkpoint.c2_model_loading import align_and_update_state_dicts

    model = _nested_model()
    if wrap:
        model = nn.DataParallel(model)
    prefix = "module." if wrap else ""
    ckpt = _short_names()
    with caplog.at_level("INFO", logger="d2lite.checkpoint.c2_model_loading"):
        aligned = align_and_update_state_dicts(model.state_dict(), ckpt, c2_conversion=False)
    assert aligned[prefix + "block1.layer1.weight"] is ckpt["layer1.weight"]
    # res.layer2.* is a longer suffix of res.layer2.* than layer2.* is.
    assert aligned[prefix + "res.layer2.bias"] is ckpt["res.layer2.bias"]
    assert aligned[prefix + "layer2.bias"] is ckpt["layer2.bias"]
    assert aligned["other.thing"] is ckpt["other.thing"]  # unmatched keys keep their names
    assert set(aligned) - set(model.state_dict()) == {"other.thing"}
    assert f"{prefix}block1.layer1.* <- layer1.{{bias,weight}}" in caplog.text
    model.load_state_dict({k: v for k, v in aligned.items() if k != "other.thing"})


def test_align_needs_a_whole_name_component_and_the_same_shape(caplog):
    from d2lite.checkpoint.c2_model_loading import align_and_update_state_dicts

    model = nn.Module()
    model.head = nn.Module()
    model.head.my_conv1 = nn.Conv2d(1, 2, 1)
    model.body = nn.Linear(4, 4)
    ckpt = {"conv1.weight": torch.zeros(2, 1, 1, 1), "body.weight": torch.zeros(3, 3)}
    with caplog.at_level("WARNING"):
        aligned = align_and_update_state_dicts(model.state_dict(), ckpt, c2_conversion=False)
    # "my_conv1" does not end in ".conv1"; "body.weight" is an exact name of the wrong shape
    # (left for the loader's mismatch report): nothing matched.
    assert aligned is ckpt and "No weights" in caplog.text

    model.body2 = nn.Module()
    model.body2.body = nn.Linear(2, 2)
    ckpt = {"body.weight": torch.zeros(2, 2), "my_conv1.weight": torch.zeros(3, 1, 1, 1)}
    caplog.clear()
    with caplog.at_level("WARNING"):
        aligned = align_and_update_state_dicts(model.state_dict(), ckpt, c2_conversion=False)
    # Each model key takes its longest suffix: body.weight (4 x 4) refuses the (2, 2) weight,
    # body2.body.weight takes it; a renamed match of the wrong shape is reported and kept.
    assert set(aligned) == {"body2.body.weight", "my_conv1.weight"}
    assert "my_conv1.weight of shape (3, 1, 1, 1)" in caplog.text and "(2, 1, 1, 1)" in caplog.text


def test_align_refuses_one_checkpoint_key_for_two_model_keys():
    from d2lite.checkpoint.c2_model_loading import align_and_update_state_dicts

    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="'weight' matches two model keys"):
        align_and_update_state_dicts(
            model.state_dict(), {"weight": torch.zeros(2, 2)}, c2_conversion=False
        )


def test_align_with_c2_conversion_renames_caffe2_resnet_blobs_first():
    from d2lite.checkpoint.c2_model_loading import align_and_update_state_dicts

    model = _Detector(_cfg(18))
    stem = model.backbone.bottom_up.stem.conv1
    blobs = {"conv1_w": np.ones(tuple(stem.weight.shape), np.float32), "fc1000_w": np.ones(3)}
    aligned = align_and_update_state_dicts(model.state_dict(), blobs)
    assert set(aligned) == {"backbone.bottom_up.stem.conv1.weight"}
    assert aligned["backbone.bottom_up.stem.conv1.weight"] is blobs["conv1_w"]


def test_name_prefix_helpers():
    from d2lite.checkpoint.c2_model_loading import (
        _group_keys_by_module,
        _group_str,
        _longest_common_prefix,
        _longest_common_prefix_str,
    )

    assert _longest_common_prefix_str(["conv", "dense"]) == ""
    assert _longest_common_prefix_str(["res2a", "res2b", "res3"]) == "res"
    assert _longest_common_prefix(["a.b.c", "a.b.d", "a.x.c"]) == "a."
    assert _longest_common_prefix(["p.q", "r.q"]) == ""
    assert _group_str(["conv1_w", "conv1_b"]) == "conv1_{w,b}"
    keys = ["s.conv.weight", "s.conv.norm.bias", "s.fc.weight", "t.weight"]
    original = {"s.conv.weight": "c_w", "s.conv.norm.bias": "c_bn_b", "s.fc.weight": "x_w",
                "t.weight": "t_w"}
    groups = _group_keys_by_module(keys, original)
    # s.conv.* share the original prefix "c_"; the outer module "s." does not ("c_" vs "x_").
    assert groups == {k: ["s.conv.weight", "s.conv.norm.bias"] for k in keys[:2]}
