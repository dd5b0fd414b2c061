"""Checkpoint files stay whole: stale temp files of killed saves, refused non-finite states,
CRC-checked loads, md5-checked model-zoo names."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import time
import uuid
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import d2lite.checkpoint.detection_checkpoint as dc
import d2lite.checkpoint.file_integrity as fi
from d2lite.checkpoint import DetectionCheckpointer, PeriodicCheckpointer


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def _sgd_state(model: nn.Module) -> torch.optim.SGD:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(3, 4)).sum().backward()
    optimizer.step()
    return optimizer


def _temp_name(target: str, host: str | None = None, pid: int | None = None) -> str:
    writer = "" if pid is None else f"{host if host is not None else fi._host()}-{pid}."
    return f".{target}.{writer}{uuid.uuid4().hex}.tmp"


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


# --- item 3: no half-written files stay behind -------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_next_checkpointer_removes_temp_file_of_killed_save(tmp_path):
    checkpointer = DetectionCheckpointer(_model(), str(tmp_path))
    checkpointer.save("model_0000003", iteration=3)
    pid = os.fork()
    if pid == 0:  # child: killed in the middle of writing, no cleanup runs
        def write_then_die(obj, f):
            f.write(b"PK\x03\x04" + b"\0" * 100_000)
            f.flush()
            os._exit(3)

        dc.torch.save = write_then_die
        try:
            checkpointer.save("model_0000007", iteration=7)
        finally:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    leftovers = [n for n in os.listdir(tmp_path) if ".tmp" in n]  # .tmp, or .tmp.pth
    assert len(leftovers) == 1 and leftovers[0].startswith(".model_0000007.pth.")
    assert os.path.getsize(tmp_path / leftovers[0]) >= 100_000

    assert DetectionCheckpointer(_model(), str(tmp_path)).resume_or_load("")["iteration"] == 3
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000003.pth"]


def test_stale_temp_rule_keeps_live_writers_and_foreign_files(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        names = {
            "live_writer": _temp_name("model_0000009.pth", pid=sleeper.pid),
            "dead_writer": _temp_name("model_0000009.pth", pid=dead.pid),
            "dead_last_checkpoint": _temp_name("last_checkpoint", pid=dead.pid),
            "other_host_recent": _temp_name("model_final.pth", host="elsewhere", pid=1),
            "other_host_old": _temp_name("model_final.pth", host="elsewhere", pid=1),
            "own_pid_recent": _temp_name("model_0000001.pth", pid=os.getpid()),
            "legacy_recent": _temp_name("model_0000001.pth"),
            "legacy_old": _temp_name("model_0000002.pth"),
            "not_ours": ".notes.txt.0123456789abcdef0123456789abcdef.tmp",
            "plain_tmp": "model_0000003.pth.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        for key in ("other_host_old", "legacy_old", "not_ours", "plain_tmp"):
            _age(tmp_path / names[key], fi.STALE_AFTER_S + 60)
        # A checkpointer that does not write (not the main process) removes nothing.
        DetectionCheckpointer(_model(), str(tmp_path), save_to_disk=False)
        assert sorted(os.listdir(tmp_path)) == sorted(names.values())

        removed = fi.remove_stale_temp_files(str(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = {"dead_writer", "dead_last_checkpoint", "other_host_old", "legacy_old"}
    assert sorted(removed) == sorted(str(tmp_path / names[k]) for k in gone)
    assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k not in gone)


def test_atomic_write_names_its_writer(tmp_path):
    seen = []
    fi.atomic_write(str(tmp_path / "model_final.pth"), lambda f: seen.extend(os.listdir(tmp_path)))
    match = fi._TEMP_NAME.match(seen[0])
    assert match and match.group("target") == "model_final.pth"
    assert (match.group("host"), int(match.group("pid"))) == (fi._host(), os.getpid())
    assert os.listdir(tmp_path) == ["model_final.pth"]


# --- item 4: a diverged model or optimizer is not saved ----------------------------------------


def test_non_finite_model_is_not_saved_and_error_names_last_good_file(tmp_path):
    model = _model()
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000004", iteration=4)
    good = (tmp_path / "model_0000004.pth").read_bytes()
    with torch.no_grad():
        model[0].weight[1, 2] = float("nan")
        model[1].running_var[0] = float("inf")
    with pytest.raises(FloatingPointError) as info:
        checkpointer.save("model_0000009", iteration=9)
    message = str(info.value)
    assert "model_0000009.pth" in message and "0.weight" in message and "1.running_var" in message
    assert str(tmp_path / "model_0000004.pth") in message
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000004.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    assert (tmp_path / "model_0000004.pth").read_bytes() == good

    with pytest.raises(FloatingPointError, match="no earlier checkpoint"):
        DetectionCheckpointer(model, str(tmp_path / "fresh")).save("model_0000000")
    assert not (tmp_path / "fresh").exists()


class _Trainer:
    """Nests the optimizer's state as DefaultTrainer does."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def state_dict(self) -> dict:
        return {"iteration": 1, "_trainer": {"optimizer": self.optimizer.state_dict()}}


def test_non_finite_optimizer_state_is_not_saved(tmp_path):
    model = _model()
    optimizer = _sgd_state(model)
    checkpointer = DetectionCheckpointer(model, str(tmp_path), trainer=_Trainer(optimizer))
    checkpointer.save("model_0000001")
    optimizer.state[model[2].weight]["momentum_buffer"][0, 0] = float("-inf")
    with pytest.raises(FloatingPointError, match=r"trainer.*optimizer.*momentum_buffer"):
        checkpointer.save("model_0000002")
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert not (tmp_path / "model_0000002.pth").exists()


def test_periodic_checkpointer_keeps_last_good_file_when_weights_diverge(tmp_path):
    model = _model()
    checkpointer = DetectionCheckpointer(model, str(tmp_path))
    periodic = PeriodicCheckpointer(checkpointer, period=2, max_iter=8, max_to_keep=1)
    for it in range(3):
        periodic.step(it)
    with torch.no_grad():
        model[2].weight.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match=r"model_0000003\.pth.*model_0000001\.pth"):
        periodic.step(3)
    # max_to_keep deletes old files only after a successful save: the good one stays.
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    resumed = DetectionCheckpointer(_model(), str(tmp_path)).resume_or_load("")
    assert resumed["iteration"] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_non_finite_cuda_model_is_not_saved(tmp_path):
    model = _model().cuda()
    with torch.no_grad():
        model[1].weight[3] = float("nan")
    with pytest.raises(FloatingPointError, match=r"1\.weight"):
        DetectionCheckpointer(model, str(tmp_path)).save("model_0000000")
    assert os.listdir(tmp_path) == []


def test_loading_non_finite_weights_warns(tmp_path, caplog):
    state = _model().state_dict()
    state["2.bias"][0] = float("nan")
    path = tmp_path / "diverged.pth"
    torch.save({"model": state}, path)
    with caplog.at_level(logging.WARNING, logger="d2lite.checkpoint.detection_checkpoint"):
        DetectionCheckpointer(_model()).load(str(path))
    assert f"{path}" in caplog.text and "2.bias" in caplog.text and "NaN" in caplog.text


# --- item 5: a corrupted checkpoint is detected ------------------------------------------------


def _flip_byte_in_entry(path, entry_suffix: str, at: int = 8) -> str:
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(entry_suffix))
    assert info.file_size > at
    header = info.header_offset  # local header: 30 bytes, then the name and the extra field
    name_len, extra_len = struct.unpack("<HH", raw[header + 26 : header + 30])
    raw[header + 30 + name_len + extra_len + at] ^= 0x04
    path.write_bytes(bytes(raw))
    return info.filename


def test_flipped_byte_in_tensor_data_is_detected_on_load_and_resume(tmp_path):
    model = _model()
    checkpointer = DetectionCheckpointer(model, str(tmp_path), optimizer=_sgd_state(model))
    checkpointer.save("model_0000004", iteration=4)
    path = tmp_path / "model_0000004.pth"
    entry = _flip_byte_in_entry(path, "/data/1")
    # torch alone reads the damaged bytes without complaint:
    torch.load(path, weights_only=True)
    with pytest.raises(RuntimeError, match=rf"{path}.*'{entry}'.*CRC"):
        DetectionCheckpointer(_model()).load(str(path))
    model2 = _model()
    resumer = DetectionCheckpointer(model2, str(tmp_path), optimizer=_sgd_state(model2))
    with pytest.raises(RuntimeError, match=rf"{path}.*'{entry}'.*last_checkpoint"):
        resumer.resume_or_load("", resume=True)


def test_damaged_pickle_entry_and_zip_structure_are_detected(tmp_path):
    path = tmp_path / "model_final.pth"
    DetectionCheckpointer(_model(), str(tmp_path)).save("model_final")
    entry = _flip_byte_in_entry(path, "/data.pkl", at=40)
    with pytest.raises(RuntimeError, match=rf"{path}.*'{entry}'"):
        DetectionCheckpointer(_model()).load(str(path))
    with open(path, "rb") as f:
        assert fi.find_damaged_zip_entry(f) == entry and f.tell() == 0
    with pytest.raises(zipfile.BadZipFile):
        fi.find_damaged_zip_entry(io.BytesIO(b"PK\x03\x04 and then nothing"))


def test_legacy_torch_file_has_no_crc_and_still_loads(tmp_path):
    model = _model()
    path = tmp_path / "legacy.pth"
    torch.save({"model": model.state_dict()}, path, _use_new_zipfile_serialization=False)
    with open(path, "rb") as f:
        assert fi.find_damaged_zip_entry(f) is None
    model2 = _model()
    DetectionCheckpointer(model2).load(str(path))
    assert torch.equal(model2[0].weight, model[0].weight)


def _zoo_pkl(directory, good: bool):
    weights = {k: np.ones(tuple(v.shape), np.float32) for k, v in _model().state_dict().items()}
    data = pickle.dumps({"model": weights, "__author__": "Detectron2 Model Zoo"})
    md5 = hashlib.md5(data).hexdigest()[:6]
    prefix = md5 if good else f"{(int(md5, 16) + 1) % 16**6:06x}"
    path = directory / f"model_final_{prefix}.pkl"
    path.write_bytes(data)
    return path


def test_model_zoo_pkl_md5_prefix_is_checked(tmp_path, caplog):
    good, bad = _zoo_pkl(tmp_path, True), _zoo_pkl(tmp_path, False)
    assert fi.model_zoo_md5_mismatch(str(good)) is None
    assert fi.model_zoo_md5_mismatch(str(tmp_path / "R-50.pkl")) is None  # not a zoo name
    with caplog.at_level(logging.WARNING, logger="d2lite.checkpoint.detection_checkpoint"):
        DetectionCheckpointer(_model()).load(str(good))
        assert not caplog.records
        model = _model()
        DetectionCheckpointer(model).load(str(bad))  # loads, but loudly
    assert str(bad) in caplog.text and "md5" in caplog.text
    assert torch.all(model[0].bias == 1)
