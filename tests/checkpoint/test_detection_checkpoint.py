"""DetectionCheckpointer: atomic saves, resume_or_load, formats, key report, corrupt files."""

from __future__ import annotations

import logging
import os
import pickle
import re

import numpy as np
import pytest
import torch
from torch import nn

import d2lite.checkpoint.detection_checkpoint as dc
from d2lite.checkpoint import DetectionCheckpointer, PeriodicCheckpointer
from d2lite.config import get_cfg
from d2lite.solver import build_lr_scheduler, build_optimizer


class _Heads(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.box_predictor = nn.Module()
        self.box_predictor.cls_score = nn.Linear(8, num_classes + 1)


class _Model(nn.Module):
    """Detectron2-like names, a BN (versioned state dict) and non-persistent pixel stats."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        self.roi_heads = _Heads(num_classes)
        self.register_buffer("pixel_mean", torch.zeros(3, 1, 1), persistent=False)


def _train_state(model: nn.Module, steps: int = 3, optimizer_name: str = "SGD"):
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER = optimizer_name
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.STEPS = 20, 5, (10,)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    for _ in range(steps):
        head = model.roi_heads.box_predictor.cls_score
        device = head.weight.device
        loss = model.backbone(torch.rand(1, 3, 5, 5, device=device)).sum()
        loss = loss + head(torch.rand(2, 8, device=device)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return optimizer, scheduler


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_save_writes_checkpoint_and_last_checkpoint(tmp_path):
    model = _Model()
    DetectionCheckpointer(model, str(tmp_path)).save("model_0000004", iteration=4)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000004.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    data = torch.load(tmp_path / "model_0000004.pth", weights_only=True)
    assert data["iteration"] == 4 and "pixel_mean" not in data["model"]


def test_save_disabled(tmp_path):
    DetectionCheckpointer(_Model(), str(tmp_path), save_to_disk=False).save("m")
    DetectionCheckpointer(_Model(), "").save("m")
    assert os.listdir(tmp_path) == []


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = _Model()
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    checkpointer.save("model_a", iteration=1)
    before = (tmp_path / "model_a.pth").read_bytes()

    def half_then_fail(obj, f):
        f.write(before[: len(before) // 2])
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(dc.torch, "save", half_then_fail)
    for name in ("model_b", "model_a"):  # a new file, and overwriting the existing one
        with pytest.raises(KeyboardInterrupt):
            checkpointer.save(name, iteration=2)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_a.pth"]
    assert (tmp_path / "model_a.pth").read_bytes() == before
    monkeypatch.undo()
    assert DetectionCheckpointer(_Model(), str(tmp_path)).resume_or_load("")["iteration"] == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_process_killed_mid_save_keeps_previous_checkpoint(tmp_path):
    model = _Model()
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    checkpointer.save("model_a", iteration=1)
    pid = os.fork()
    if pid == 0:  # child: die without any cleanup in the middle of writing
        def write_then_die(obj, f):
            f.write(b"PK\x03\x04partial")
            f.flush()
            os._exit(3)

        dc.torch.save = write_then_die
        try:
            checkpointer.save("model_b", iteration=2)
        finally:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    assert (tmp_path / "last_checkpoint").read_text() == "model_a.pth"
    assert not (tmp_path / "model_b.pth").exists()
    assert DetectionCheckpointer(_Model(), str(tmp_path)).resume_or_load("")["iteration"] == 1


def test_resume_restores_everything(tmp_path):
    model = _Model()
    optimizer, scheduler = _train_state(model)
    DetectionCheckpointer(model, str(tmp_path), optimizer=optimizer, scheduler=scheduler).save(
        "model_0000002", iteration=2
    )
    other = tmp_path / "other.pth"
    torch.save({"model": _Model().state_dict()}, other)

    model2 = _Model()
    optimizer2, scheduler2 = _train_state(model2, steps=0)
    ckpt = DetectionCheckpointer(
        model2, str(tmp_path), optimizer=optimizer2, scheduler=scheduler2
    ).resume_or_load(str(other), resume=True)
    assert ckpt == {"iteration": 2}
    _assert_same_weights(model, model2)
    assert scheduler2.last_epoch == 3
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"])
    buf, buf2 = (o.state_dict()["state"][0]["momentum_buffer"] for o in (optimizer, optimizer2))
    assert torch.equal(buf, buf2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_checkpoint_loads_on_cpu_and_resumes_on_cuda(tmp_path):
    model = _Model().cuda()
    optimizer, scheduler = _train_state(model)
    DetectionCheckpointer(model, str(tmp_path), optimizer=optimizer, scheduler=scheduler).save(
        "model_0000002", iteration=2
    )
    cpu_model = _Model()
    DetectionCheckpointer(cpu_model).load(str(tmp_path / "model_0000002.pth"))
    _assert_same_weights(model.cpu(), cpu_model)

    model2 = _Model().cuda()
    optimizer2, scheduler2 = _train_state(model2, steps=0)
    DetectionCheckpointer(
        model2, str(tmp_path), optimizer=optimizer2, scheduler=scheduler2
    ).resume_or_load("", resume=True)
    assert model2.backbone[0].weight.is_cuda
    assert optimizer2.state_dict()["state"][0]["momentum_buffer"].is_cuda
    assert scheduler2.last_epoch == 3


def test_load_branch_loads_model_only(tmp_path):
    model = _Model()
    optimizer, scheduler = _train_state(model)
    weights = tmp_path / "weights"
    DetectionCheckpointer(model, str(weights), optimizer=optimizer, scheduler=scheduler).save(
        "model_final", iteration=9
    )
    out = tmp_path / "out"
    DetectionCheckpointer(_Model(), str(out)).save("model_0000000", iteration=0)

    model2 = _Model()
    optimizer2, scheduler2 = _train_state(model2, steps=0)
    checkpointer = DetectionCheckpointer(
        model2, str(out), optimizer=optimizer2, scheduler=scheduler2
    )
    ckpt = checkpointer.resume_or_load(str(weights / "model_final.pth"), resume=False)
    _assert_same_weights(model, model2)
    assert ckpt["iteration"] == 9 and "optimizer" in ckpt  # returned, not applied
    assert optimizer2.state_dict()["state"] == {} and scheduler2.last_epoch == 0
    assert checkpointer.resume_or_load("", resume=False) == {}


def test_resume_without_checkpoint_loads_path(tmp_path):
    model = _Model()
    path = tmp_path / "init.pth"
    torch.save({"model": model.state_dict(), "iteration": 7}, path)
    model2 = _Model()
    ckpt = DetectionCheckpointer(model2, str(tmp_path / "empty")).resume_or_load(str(path))
    _assert_same_weights(model, model2)
    assert ckpt == {"iteration": 7}


@pytest.mark.parametrize("optimizer_name", ["SGD", "AdamW"])
def test_full_checkpoint_loads_with_weights_only(tmp_path, optimizer_name):
    model = _Model()
    optimizer, scheduler = _train_state(model, optimizer_name=optimizer_name)
    DetectionCheckpointer(model, str(tmp_path), optimizer=optimizer, scheduler=scheduler).save(
        "full",
        iteration=np.int64(3),
        best=np.float32(0.5),
        hist=[np.float64(1.0)],
        arr=np.arange(3),
        tags={"a", "b"},
        dev=torch.device("cpu"),
    )
    data = torch.load(tmp_path / "full.pth", map_location="cpu", weights_only=True)
    assert data["iteration"] == 3 and type(data["iteration"]) is int
    assert data["best"] == 0.5 and data["hist"] == [1.0] and data["tags"] == {"a", "b"}
    assert torch.equal(data["arr"], torch.arange(3)) and data["dev"] == torch.device("cpu")
    assert data["scheduler"] == {"base_lrs": scheduler.base_lrs, "last_epoch": 3}
    state, saved = optimizer.state_dict(), data["optimizer"]
    assert saved["param_groups"] == state["param_groups"]
    for idx, per_param in state["state"].items():
        for k, v in per_param.items():
            assert torch.equal(saved["state"][idx][k], v), (idx, k)


def test_save_rejects_objects_weights_only_cannot_load(tmp_path):
    checkpointer = DetectionCheckpointer(_Model(), str(tmp_path))
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\]\['fn'\].*weights_only"):
        checkpointer.save("m", extra={"fn": _Model})
    assert os.listdir(tmp_path) == []


def test_shape_mismatch_skipped_and_reported_in_one_table(tmp_path, caplog):
    source = _Model(num_classes=80).state_dict()
    source["roi_heads.extra.weight"] = torch.zeros(2)
    del source["backbone.1.running_var"]
    source["pixel_mean"] = torch.ones(3, 1, 1)  # old checkpoints carried it: no warning
    path = tmp_path / "coco.pth"
    torch.save({"model": source}, path)

    model = _Model(num_classes=10)
    head_before = model.roi_heads.box_predictor.cls_score.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="d2lite.checkpoint.detection_checkpoint"):
        DetectionCheckpointer(model).load(str(path))
    assert torch.equal(model.roi_heads.box_predictor.cls_score.weight, head_before)
    assert torch.equal(model.backbone[0].weight, source["backbone.0.weight"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert str(path) in text
    lines = text.splitlines()
    assert lines[1].split(" | ")[0].strip() == "status"
    row = next(line for line in lines if "cls_score.weight" in line)
    assert "shape mismatch" in row and "(81, 8)" in row and "(11, 8)" in row
    assert any("cls_score.bias" in line and "(81,)" in line for line in lines)
    assert any("missing" in line and "backbone.1.running_var" in line for line in lines)
    assert any("unused" in line and "roi_heads.extra.weight" in line for line in lines)
    assert "pixel_mean" not in text


def test_clean_load_logs_no_warning(tmp_path, caplog):
    path = tmp_path / "same.pth"
    torch.save({"model": _Model().state_dict()}, path)
    with caplog.at_level(logging.INFO, logger="d2lite.checkpoint.detection_checkpoint"):
        DetectionCheckpointer(_Model()).load(str(path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "All model weights loaded" in caplog.text


def test_detectron2_pkl_loads_without_conversion(tmp_path, monkeypatch):
    model = _Model()
    arrays = {k: v.numpy().copy() + 1 for k, v in model.state_dict().items()}
    path = tmp_path / "model_final_abc.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": arrays, "__author__": "Detectron2 Model Zoo"}, f)
    _fake_converter(monkeypatch, lambda sd, keys: pytest.fail("must not convert"))
    DetectionCheckpointer(model).load(str(path))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), arrays[k])


def _fake_converter(monkeypatch, fn):
    monkeypatch.setattr(dc, "convert_to_model_names", fn)


def test_caffe2_pkl_goes_through_name_conversion(tmp_path, monkeypatch):
    model = _Model()
    calls = []

    def convert(state_dict, model_keys):
        calls.append((dict(state_dict), list(model_keys)))
        return {"backbone.0.weight": state_dict["conv1_w"]}

    _fake_converter(monkeypatch, convert)
    blobs = {"conv1_w": np.full((8, 3, 3, 3), 2.0, np.float32), "conv1_w_momentum": np.ones(1)}
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs, "lr": 0.1}, f, protocol=2)
    DetectionCheckpointer(model).load(str(path))
    (state_dict, model_keys), = calls
    assert list(state_dict) == ["conv1_w"] and isinstance(state_dict["conv1_w"], torch.Tensor)
    assert "roi_heads.box_predictor.cls_score.weight" in model_keys
    assert torch.all(model.backbone[0].weight == 2.0)


def test_converted_pkl_with_matching_heuristics_flag(tmp_path, monkeypatch):
    calls = []
    _fake_converter(monkeypatch, lambda sd, keys: calls.append(sorted(sd)) or sd)
    path = tmp_path / "from_torchvision.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {"stem.conv1.weight": np.zeros(1)}, "matching_heuristics": True}, f)
    DetectionCheckpointer(_Model()).load(str(path))
    assert calls == [["stem.conv1.weight"]]


def test_bare_state_dict_and_query_go_through_conversion(tmp_path, monkeypatch):
    calls = []
    _fake_converter(monkeypatch, lambda sd, keys: calls.append(sorted(sd)) or sd)
    bare = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bare)
    DetectionCheckpointer(_Model()).load(str(bare))
    full = tmp_path / "full.pth"
    torch.save({"model": _Model().state_dict()}, full)
    DetectionCheckpointer(_Model()).load(str(full))
    DetectionCheckpointer(_Model()).load(f"{full}?matching_heuristics=True")
    assert len(calls) == 2 and calls[0] == ["conv1.weight"]
    with pytest.raises(ValueError, match="Unsupported query.*foo"):
        DetectionCheckpointer(_Model()).load(f"{full}?foo=1")


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    model = _Model()
    DetectionCheckpointer(model, str(tmp_path)).save("good")
    good = (tmp_path / "good.pth").read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x02not a pickle at all")
    bad_pkl = tmp_path / "bad.pkl"
    bad_pkl.write_bytes(pickle.dumps({"model": {"a": np.zeros(3)}})[:-10])
    for path in (truncated, garbage, bad_pkl):
        with pytest.raises(RuntimeError, match=f"{path}.*truncated or corrupt"):
            DetectionCheckpointer(_Model()).load(str(path))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        DetectionCheckpointer(_Model()).load(str(tmp_path / "nope.pth"))
    DetectionCheckpointer(_Model()).load(str(tmp_path / "good.pth"))


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pth_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "x": _Evil(str(marker))}, path)
    with pytest.raises(pickle.UnpicklingError, match=f"Refusing to load {path}.*system"):
        DetectionCheckpointer(_Model()).load(str(path))
    assert not marker.exists()


def test_periodic_checkpointer_keeps_last_n(tmp_path):
    checkpointer = DetectionCheckpointer(_Model(), str(tmp_path))
    periodic = PeriodicCheckpointer(checkpointer, period=2, max_iter=6, max_to_keep=1)
    for it in range(6):
        periodic.step(it)
    expected = ["last_checkpoint", "model_0000005.pth", "model_final.pth"]
    assert sorted(os.listdir(tmp_path)) == expected
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"


def _resnet18_detector() -> nn.Module:
    from d2lite.layers import ShapeSpec
    from d2lite.modeling.backbone import build_resnet_backbone

    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res4"]
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.bottom_up = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    model.roi_heads = _Heads(2)
    return model


def test_torchvision_resnet_pth_loads_into_detector_backbone(tmp_path, caplog):
    torchvision = pytest.importorskip("torchvision")
    source = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = _resnet18_detector()
    with caplog.at_level(logging.WARNING, logger="d2lite.checkpoint.detection_checkpoint"):
        DetectionCheckpointer(model).load(str(path))
    bottom_up = model.backbone.bottom_up
    assert torch.equal(bottom_up.stem.conv1.weight, source.conv1.weight)
    assert torch.equal(bottom_up.res3[0].shortcut.weight, source.layer2[0].downsample[0].weight)
    assert torch.equal(bottom_up.res4[1].conv2.norm.running_var, source.layer3[1].bn2.running_var)
    # Only the detector's own head is reported; layer4 (res5, not built) and fc are not model keys.
    table = caplog.records[-1].getMessage()
    assert "missing in checkpoint | roi_heads.box_predictor.cls_score.{bias, weight}" in table
    assert "backbone.bottom_up" not in table.split("unused")[0]


class _Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Module()
        self.block.layer1 = nn.Linear(2, 3)
        self.layer2 = nn.Linear(3, 2)


def _short_names() -> dict[str, torch.Tensor]:
    return {"layer1.weight": torch.rand(3, 2), "layer1.bias": torch.rand(3),
            "layer2.weight": torch.rand(2, 3), "layer2.bias": torch.rand(2)}


def test_matching_heuristics_query_applies_suffix_matching(tmp_path):
    weights = _short_names()
    path = tmp_path / "short.pth"
    torch.save({"model": weights}, path)
    model = _Nested()
    with torch.no_grad():
        model.block.layer1.weight.fill_(5.0)
    DetectionCheckpointer(model).load(str(path))
    # Without the flag only exact names load, as in Detectron2.
    assert torch.all(model.block.layer1.weight == 5.0)
    assert torch.equal(model.layer2.weight, weights["layer2.weight"])
    DetectionCheckpointer(model).load(f"{path}?matching_heuristics=True")
    assert torch.equal(model.block.layer1.weight, weights["layer1.weight"])
    assert torch.equal(model.block.layer1.bias, weights["layer1.bias"])


def test_flag_stored_in_a_pkl_applies_suffix_matching(tmp_path):
    arrays = {k: v.numpy() for k, v in _short_names().items()}
    path = tmp_path / "converted.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": arrays, "__author__": "someone", "matching_heuristics": True}, f)
    model = _Nested()
    DetectionCheckpointer(model).load(str(path))
    loaded = model.block.layer1.weight.detach().numpy()
    np.testing.assert_array_equal(loaded, arrays["layer1.weight"])


def test_bare_state_dict_loads_exact_names_only(tmp_path, caplog):
    # Detectron2 does not flag a bare state dict: short names stay unused instead of being
    # matched by suffix (d2lite flags it only for its explicit ResNet maps).
    path = tmp_path / "bare.pth"
    torch.save(_short_names(), path)
    model = _Nested()
    before = model.block.layer1.weight.detach().clone()
    with caplog.at_level(logging.WARNING, logger="d2lite.checkpoint.detection_checkpoint"):
        DetectionCheckpointer(model).load(str(path))
    assert torch.equal(model.block.layer1.weight, before)
    assert re.search(r"unused: not in model +\| layer1\.\{bias, weight\}", caplog.text)
    DetectionCheckpointer(model).load(f"{path}?matching_heuristics=True")
    assert not torch.equal(model.block.layer1.weight, before)


def test_custom_path_manager_handler(tmp_path):
    from iopath.common.file_io import PathHandler, PathManager

    class _TestHandler(PathHandler):
        PREFIX = "d2lite_test://"

        def _get_supported_prefixes(self):
            return [self.PREFIX]

        def _get_local_path(self, path, **kwargs):
            return str(tmp_path / path[len(self.PREFIX):])

        def _open(self, path, mode="r", **kwargs):
            return open(self._get_local_path(path), mode, **kwargs)

    manager = PathManager()
    manager.register_handler(_TestHandler())
    weights = _short_names()
    torch.save({"model": weights, "iteration": 3}, tmp_path / "ckpt.pth")
    model = _Nested()
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    checkpointer.path_manager = manager
    assert checkpointer.load("d2lite_test://ckpt.pth") == {"iteration": 3}
    assert torch.equal(model.layer2.bias, weights["layer2.bias"])
    checkpointer.load("d2lite_test://ckpt.pth?matching_heuristics=True")
    assert torch.equal(model.block.layer1.bias, weights["layer1.bias"])


def test_caffe2_pkl_end_to_end_explicit_map_then_suffix_matching(tmp_path):
    model = _resnet18_detector()
    stem = model.backbone.bottom_up.stem.conv1
    blobs = {
        "conv1_w": np.full(tuple(stem.weight.shape), 0.5, np.float32),
        "res_conv1_bn_s": np.full(64, 2.0, np.float32),
        "res2_0_branch2a_w": np.full((64, 64, 3, 3), 0.25, np.float32),
        "fc1000_w": np.ones((1000, 512), np.float32),
    }
    path = tmp_path / "R-18.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    DetectionCheckpointer(model).load(str(path))
    bottom_up = model.backbone.bottom_up
    assert torch.all(bottom_up.stem.conv1.weight == 0.5)
    assert torch.all(bottom_up.stem.conv1.norm.weight == 2.0)
    assert torch.all(bottom_up.stem.conv1.norm.running_var == 1.0)  # folded stats filled in
    assert torch.all(bottom_up.res2[0].conv1.weight == 0.25)
