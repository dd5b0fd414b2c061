"""training_checks: the from-scratch warning and flag, and the settings torchvision weights need."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import d2lite.config.training_checks as tc
from d2lite.checkpoint import DetectionCheckpointer
from d2lite.config import get_cfg
from d2lite.config.training_checks import (
    check_from_scratch,
    check_training_settings,
    check_weights_settings,
    from_scratch_overrides,
)
from d2lite.layers import ShapeSpec
from d2lite.model_zoo import get_config_file
from d2lite.modeling import build_model
from d2lite.modeling.backbone import build_resnet_fpn_backbone

LOGGER = "d2lite.config.training_checks"
TV_MEAN, TV_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
ALL_TORCHVISION_OVERRIDES = [
    "INPUT.FORMAT", "RGB",
    "MODEL.PIXEL_MEAN", str(TV_MEAN),
    "MODEL.PIXEL_STD", str(TV_STD),
    "MODEL.RESNETS.STRIDE_IN_1X1", "False",
]  # fmt: skip


@pytest.fixture(scope="module")
def tv18_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("weights") / "resnet18-f37072fd.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return str(path)


def _r50_fpn_cfg(weights: str = ""):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = weights
    return cfg


def _small_heads(cfg):
    """Narrow FPN and box head: the backbone is what these tests are about."""
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    return cfg


def _records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


# --- torchvision weights -------------------------------------------------------------------


def test_torchvision_weights_get_their_settings_in_one_message(tv50_path, caplog):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = tv50_path
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        applied = check_weights_settings(cfg)
    assert applied == ALL_TORCHVISION_OVERRIDES
    assert cfg.INPUT.FORMAT == "RGB"
    assert cfg.MODEL.PIXEL_MEAN == pytest.approx(TV_MEAN)
    assert cfg.MODEL.PIXEL_STD == pytest.approx(TV_STD)
    assert cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False
    (record,) = _records(caplog)
    message = record.getMessage()
    assert tv50_path in message and "torchvision" in message
    for change in (
        "INPUT.FORMAT 'BGR' -> 'RGB'",
        "MODEL.PIXEL_MEAN [103.53, 116.28, 123.675] -> [123.675, 116.28, 103.53]",
        "MODEL.PIXEL_STD [1.0, 1.0, 1.0] -> [58.395, 57.12, 57.375]",
        "MODEL.RESNETS.STRIDE_IN_1X1 True -> False",
    ):
        assert change in message
    assert "Kept as set" not in message


def test_torchvision_check_is_idempotent_and_silent_the_second_time(tv50_path, caplog):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = tv50_path
    check_weights_settings(cfg)
    once = cfg.dump()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert check_weights_settings(cfg) == []
    assert cfg.dump() == once
    assert _records(caplog) == []


def test_a_frozen_config_is_adjusted_and_stays_frozen(tv50_path):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = tv50_path + "?matching_heuristics=True"  # the checkpointer's suffix
    cfg.freeze()
    assert check_weights_settings(cfg) == ALL_TORCHVISION_OVERRIDES
    assert cfg.is_frozen()
    assert cfg.INPUT.FORMAT == "RGB" and cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False


def test_a_value_the_user_chose_is_kept_and_named_in_the_same_message(tv50_path, caplog):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = tv50_path
    cfg.MODEL.PIXEL_MEAN = [110.0, 111.0, 112.0]  # e.g. the dataset's own statistics
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        applied = check_weights_settings(cfg)
    assert "MODEL.PIXEL_MEAN" not in applied and "INPUT.FORMAT" in applied
    assert cfg.MODEL.PIXEL_MEAN == [110.0, 111.0, 112.0]
    (record,) = _records(caplog)
    message = record.getMessage()
    assert "INPUT.FORMAT 'BGR' -> 'RGB'" in message
    assert "Kept as set" in message
    assert "MODEL.PIXEL_MEAN [110.0, 111.0, 112.0] (the weights need [123.675" in message

    # Nothing left to change: the kept value is named once per process, not at every check.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert check_weights_settings(cfg) == []
        assert check_weights_settings(cfg) == []
    (record,) = _records(caplog)
    assert "Kept as set" in record.getMessage() and "Changed" not in record.getMessage()


def test_imagenet_std_in_bgr_order_follows_the_format_to_rgb(tv50_path):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = tv50_path
    cfg.MODEL.PIXEL_STD = [57.375, 57.120, 58.395]  # as in Detectron2's from-scratch configs
    check_weights_settings(cfg)
    assert cfg.MODEL.PIXEL_STD == pytest.approx(TV_STD)


def test_resnet18_weights_leave_stride_in_1x1_alone(tv18_path):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = tv18_path
    cfg.MODEL.RESNETS.DEPTH = 18
    applied = check_weights_settings(cfg)
    # Basic blocks have no 1x1 conv, so the key does nothing and is not reported.
    assert applied == ALL_TORCHVISION_OVERRIDES[:6]
    assert cfg.MODEL.RESNETS.STRIDE_IN_1X1 is True


def test_legacy_torch_files_and_checkpoint_dicts_are_recognised(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    legacy = tmp_path / "legacy.pth"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": state, "matching_heuristics": True}, wrapped)
    for path in (legacy, wrapped):
        cfg = get_cfg()
        cfg.MODEL.WEIGHTS = str(path)
        assert check_weights_settings(cfg)[:2] == ["INPUT.FORMAT", "RGB"]


def _d2lite_checkpoint(tmp_path) -> str:
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.bottom_up = torchvision.models.resnet18(weights=None)  # nested: full names
    DetectionCheckpointer(model, str(tmp_path)).save("model_final")
    return str(tmp_path / "model_final.pth")


def _caffe2_pickle(tmp_path) -> str:
    path = tmp_path / "R-50.pkl"
    blobs = {"conv1_w": np.zeros((64, 3, 7, 7), np.float32), "res2_0_branch2a_w": np.zeros(1)}
    path.write_bytes(pickle.dumps({"blobs": blobs}))
    return str(path)


def _corrupt_file(tmp_path) -> str:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"PK\x03\x04 a truncated zip")
    return str(path)


@pytest.mark.parametrize(
    "make_path",
    [
        lambda tmp: "",
        _d2lite_checkpoint,
        _caffe2_pickle,
        lambda tmp: "detectron2://ImageNetPretrained/MSRA/R-50.pkl",
        lambda tmp: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        lambda tmp: str(tmp / "missing.pth"),
        _corrupt_file,
    ],
    ids=["empty", "d2lite", "caffe2_pkl", "detectron2_url", "http_url", "missing", "corrupt"],
)
def test_other_weights_are_left_alone(make_path, tmp_path, caplog):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = make_path(tmp_path)
    before = cfg.dump()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert check_weights_settings(cfg) == []
    assert cfg.dump() == before
    assert _records(caplog) == []


def test_urls_are_not_downloaded(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be downloaded or read")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("d2lite.utils.file_io.PathManager.get_local_path", refuse)
    for url in (
        "detectron2://ImageNetPretrained/MSRA/R-50.pkl",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    ):
        cfg = get_cfg()
        cfg.MODEL.WEIGHTS = url
        assert check_weights_settings(cfg) == []


# --- end to end: the adjusted config builds the model the weights fit ------------------------


def _res5(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.backbone.bottom_up(x)["res5"]


def test_adjusted_config_loads_torchvision_weights_and_computes_torchvision_features(
    tv50_path, monkeypatch, caplog
):
    cfg = _small_heads(_r50_fpn_cfg(tv50_path))
    check_training_settings(cfg)
    model = build_model(cfg).eval()
    assert model.input_format == "RGB"
    torch.testing.assert_close(model.pixel_std.flatten(), torch.tensor(TV_STD))
    block = model.backbone.bottom_up.res3[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)

    loaded = []
    monkeypatch.setattr(
        DetectionCheckpointer, "_log_incompatible_keys", lambda self, keys: loaded.append(keys)
    )
    with caplog.at_level(logging.WARNING, logger="d2lite.checkpoint"):
        DetectionCheckpointer(model).load(tv50_path)
    (incompatible,) = loaded
    assert incompatible.incorrect_shapes == [] and incompatible.unexpected_keys == []
    assert not [k for k in incompatible.missing_keys if k.startswith("backbone.bottom_up.")]
    assert not [r for r in caplog.records if r.name.startswith("d2lite.checkpoint")]

    tv = torchvision.models.resnet50(weights=None)
    tv.load_state_dict(torch.load(tv50_path, weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = nn.Sequential(*list(tv.eval().children())[:-2])(x)
        actual = _res5(model, x)
    assert (actual - expected).abs().max() <= 1e-3 * expected.abs().max()


def test_a_d2lite_checkpoint_loads_with_its_config_untouched(tmp_path):
    cfg = _small_heads(_r50_fpn_cfg())
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 18, 64
    source = build_model(cfg)
    DetectionCheckpointer(source, str(tmp_path)).save("model_final")
    cfg.MODEL.WEIGHTS = str(tmp_path / "model_final.pth")
    before = cfg.dump()
    assert check_training_settings(cfg) == []
    assert cfg.dump() == before
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)


# --- training from scratch -------------------------------------------------------------------


def test_no_weights_with_frozen_bn_and_frozen_stages_warns_before_training(caplog):
    cfg = _r50_fpn_cfg()
    cfg.SOLVER.IMS_PER_BATCH = 2
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        problems = check_from_scratch(cfg)
    assert len(problems) == 2
    (record,) = _records(caplog)
    message = record.getMessage()
    assert "nothing is pretrained" in message
    assert "FrozenBN" in message and "identity" in message
    assert "FREEZE_AT is 2" in message and "the stem and res2" in message
    assert "MODEL.RESNETS.NORM GN MODEL.FPN.NORM GN MODEL.BACKBONE.FREEZE_AT 0" in message
    assert "3x longer" in message and "--from-scratch" in message
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN"  # a warning only: nothing is changed or refused


def test_the_same_config_is_warned_about_once(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        check_training_settings(_r50_fpn_cfg())  # the tool's check
        check_training_settings(_r50_fpn_cfg())  # then the trainer's
    assert len(_records(caplog)) == 1


def test_only_frozen_stages_is_one_problem():
    cfg = _r50_fpn_cfg()
    cfg.MODEL.RESNETS.NORM = "GN"
    cfg.MODEL.BACKBONE.FREEZE_AT = 1
    (problem,) = check_from_scratch(cfg)
    assert "FREEZE_AT is 1" in problem and problem.endswith("the stem")


def _tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    return cfg


def _user_backbone_cfg():
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "MyBackbone"
    return cfg


def _trash_demo_cfg():
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml"))
    return cfg


def _pretrained_cfg():
    return _r50_fpn_cfg("detectron2://ImageNetPretrained/MSRA/R-50.pkl")


@pytest.mark.parametrize(
    "make_cfg", [_tiny_cfg, _user_backbone_cfg, _trash_demo_cfg, _pretrained_cfg]
)
def test_no_from_scratch_warning_where_nothing_is_wrong_or_not_a_resnet(make_cfg, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert check_from_scratch(make_cfg()) == []
    assert _records(caplog) == []


def test_from_scratch_overrides_make_a_config_that_trains_from_scratch(caplog):
    cfg = _pretrained_cfg()
    cfg.SOLVER.IMS_PER_BATCH = 2
    with caplog.at_level(logging.INFO, logger=LOGGER):
        overrides = from_scratch_overrides(cfg)
    assert overrides == [
        "MODEL.WEIGHTS", "",
        "MODEL.RESNETS.NORM", "GN",
        "MODEL.FPN.NORM", "GN",
        "MODEL.BACKBONE.FREEZE_AT", "0",
    ]  # fmt: skip
    assert any("SOLVER.MAX_ITER stays 90000" in r.getMessage() for r in caplog.records)
    cfg.merge_from_list(overrides)
    assert from_scratch_overrides(cfg) == []  # applying them twice is applying them once
    assert check_from_scratch(cfg) == []
    backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
    assert isinstance(backbone.bottom_up.stem.conv1.norm, nn.GroupNorm)
    assert isinstance(backbone.fpn_lateral2.norm, nn.GroupNorm)
    assert all(p.requires_grad for p in backbone.parameters())


def test_from_scratch_norm_is_bn_only_with_enough_images_per_device(monkeypatch):
    cfg = _r50_fpn_cfg()  # 16 images per batch
    assert from_scratch_overrides(cfg)[1] == "BN"
    monkeypatch.setattr(tc.comm, "get_world_size", lambda: 8)  # 2 images per device
    assert from_scratch_overrides(cfg)[1] == "GN"


def test_from_scratch_overrides_leave_other_backbones_but_drop_the_weights():
    cfg = _user_backbone_cfg()
    cfg.MODEL.WEIGHTS = "my_weights.pth"
    assert from_scratch_overrides(cfg) == ["MODEL.WEIGHTS", ""]
