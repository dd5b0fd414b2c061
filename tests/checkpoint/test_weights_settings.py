"""weights_settings: reading a weights file's names cheaply, and torchvision settings at load."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import d2lite.checkpoint.weights_settings as ws
from d2lite.checkpoint import DetectionCheckpointer
from d2lite.checkpoint.weights_settings import (
    TORCHVISION_SETTINGS,
    peek_weights_format,
    read_weight_names,
    same_setting,
    torchvision_mismatches,
)
from d2lite.config import get_cfg
from d2lite.layers import ShapeSpec
from d2lite.modeling.backbone import build_resnet_fpn_backbone
from d2lite.modeling.backbone.resnet import BottleneckBlock


@pytest.fixture(scope="module")
def tv18():
    return torchvision.models.resnet18(weights=None).state_dict()


def _save(tmp_path, name: str, obj, **kwargs) -> str:
    path = tmp_path / name
    torch.save(obj, path, **kwargs)
    return str(path)


def test_names_of_a_zip_file_come_from_a_memory_map(tv18, tmp_path, monkeypatch):
    path = _save(tmp_path, "resnet18.pth", tv18)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert read_weight_names(path) == list(tv18)
    # Memory-mapped: the tensors' bytes are not read, only the pickled structure.
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": True}]


def test_names_of_legacy_files_and_training_checkpoints(tv18, tmp_path):
    legacy = _save(tmp_path, "legacy.pth", tv18, _use_new_zipfile_serialization=False)
    assert read_weight_names(legacy) == list(tv18)
    checkpoint = {"model": {"a.weight": torch.ones(1)}, "iteration": 3}
    wrapped = _save(tmp_path, "model_final.pth", checkpoint)
    assert read_weight_names(wrapped) == ["a.weight"]
    assert read_weight_names(wrapped + "?matching_heuristics=True") == ["a.weight"]


def test_unread_paths_give_none(tmp_path):
    pkl = tmp_path / "R-50.pkl"
    pkl.write_bytes(pickle.dumps({"conv1_w": np.zeros(1)}))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    not_a_dict = _save(tmp_path, "tensor.pth", torch.ones(2))
    for path in (
        "",
        str(pkl),  # Detectron2/Caffe2 pickles keep Detectron2's defaults: not read
        str(corrupt),
        not_a_dict,
        str(tmp_path / "missing.pth"),
        "detectron2://ImageNetPretrained/MSRA/R-50.pkl",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    ):
        assert read_weight_names(path) is None, path


def test_a_file_that_runs_code_is_not_unpickled(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickling ran code",))

    path = _save(tmp_path, "evil.pth", {"conv1.weight": Evil()})
    assert read_weight_names(path) is None
    assert "unpickling ran code" not in capsys.readouterr().out


def test_peek_weights_format_tells_whose_names(tv18, tmp_path):
    assert peek_weights_format(_save(tmp_path, "tv.pth", tv18)) == "torchvision"
    caffe2 = {"conv1_w": torch.ones(1), "res2_0_branch2a_w": torch.ones(1)}
    assert peek_weights_format(_save(tmp_path, "c2.pth", caffe2)) == "caffe2"
    d2 = {"model": {"backbone.bottom_up.stem.conv1.weight": torch.ones(1)}}
    assert peek_weights_format(_save(tmp_path, "d2.pth", d2)) == "detectron2"
    assert peek_weights_format("detectron2://ImageNetPretrained/MSRA/R-50.pkl") is None


def test_same_setting():
    assert same_setting([123.675, 116.28, 103.53], (123.6750, 116.280, 103.530))
    assert not same_setting([123.675, 116.28, 103.53], [103.53, 116.28, 123.675])
    assert not same_setting([1.0, 1.0], [1.0, 1.0, 1.0])
    assert same_setting("RGB", "RGB") and not same_setting("RGB", "BGR")
    assert not same_setting(True, 1)


class _Model(nn.Module):
    """What torchvision_mismatches reads of a GeneralizedRCNN, with one ResNet-50 block."""

    def __init__(self, *, input_format: str, mean, std, stride_in_1x1: bool) -> None:
        super().__init__()
        self.input_format = input_format
        self.register_buffer("pixel_mean", torch.tensor(mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(std).view(-1, 1, 1), False)
        self.block = BottleneckBlock(
            64, 256, bottleneck_channels=64, stride=2, stride_in_1x1=stride_in_1x1
        )


def test_torchvision_mismatches_names_each_setting_a_model_was_built_with():
    defaults = get_cfg()
    model = _Model(
        input_format=defaults.INPUT.FORMAT,
        mean=defaults.MODEL.PIXEL_MEAN,
        std=defaults.MODEL.PIXEL_STD,
        stride_in_1x1=defaults.MODEL.RESNETS.STRIDE_IN_1X1,
    )
    assert torchvision_mismatches(model) == [
        "INPUT.FORMAT 'BGR'",
        "MODEL.PIXEL_MEAN [103.53, 116.28, 123.675]",
        "MODEL.PIXEL_STD [1.0, 1.0, 1.0]",
        "MODEL.RESNETS.STRIDE_IN_1X1 True",
    ]
    fitting = _Model(
        input_format="RGB",
        mean=TORCHVISION_SETTINGS["MODEL.PIXEL_MEAN"],
        std=TORCHVISION_SETTINGS["MODEL.PIXEL_STD"],
        stride_in_1x1=False,
    )
    assert torchvision_mismatches(fitting) == []
    assert torchvision_mismatches(nn.Linear(2, 2)) == []  # nothing to tell: nothing named


class _Detector(nn.Module):
    """A ResNet-18 FPN where GeneralizedRCNN has it, with its input settings."""

    def __init__(self, input_format: str, mean, std) -> None:
        super().__init__()
        cfg = get_cfg()
        cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 18, 64
        cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
        cfg.MODEL.FPN.IN_FEATURES, cfg.MODEL.FPN.OUT_CHANNELS = ["res2", "res3", "res4", "res5"], 8
        self.backbone = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
        self.input_format = input_format
        self.register_buffer("pixel_mean", torch.tensor(mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(std).view(-1, 1, 1), False)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ws.__name__]


def test_checkpointer_warns_when_torchvision_weights_meet_caffe2_settings(tv18, tmp_path, caplog):
    path = _save(tmp_path, "resnet18.pth", tv18)
    defaults = get_cfg().MODEL
    with caplog.at_level(logging.WARNING, logger=ws.__name__):
        DetectionCheckpointer(_Detector("BGR", defaults.PIXEL_MEAN, defaults.PIXEL_STD)).load(path)
    (message,) = _warnings(caplog)
    assert path in message
    assert "INPUT.FORMAT 'BGR', MODEL.PIXEL_MEAN [103.53, 116.28, 123.675]" in message
    assert "check_weights_settings" in message and "INPUT.FORMAT 'RGB'" in message

    caplog.clear()
    tv = TORCHVISION_SETTINGS
    fitting = _Detector("RGB", tv["MODEL.PIXEL_MEAN"], tv["MODEL.PIXEL_STD"])
    with caplog.at_level(logging.WARNING, logger=ws.__name__):
        DetectionCheckpointer(fitting).load(path)
        DetectionCheckpointer(fitting, str(tmp_path)).save("model_final")
        # A d2lite checkpoint is not torchvision's, whatever the model's settings.
        model = _Detector("BGR", defaults.PIXEL_MEAN, defaults.PIXEL_STD)
        DetectionCheckpointer(model).load(str(tmp_path / "model_final.pth"))
    assert _warnings(caplog) == []
    torch.testing.assert_close(
        model.backbone.bottom_up.res4[0].conv1.weight, tv18["layer3.0.conv1.weight"]
    )
