from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch
from engine_toys import train_toy

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_toys.py")


def _last_checkpoint(out_dir) -> str:
    try:
        with open(os.path.join(out_dir, "last_checkpoint")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def test_sigkill_between_checkpoints_then_resume_matches_uninterrupted(tmp_path):
    max_iter, period = 12, 4
    full = train_toy(str(tmp_path / "full"), max_iter, period, sleep=0.0)

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, str(out), str(max_iter), str(period), "0.25"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 60
        while _last_checkpoint(out) != "model_0000003.pth":
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "the toy run wrote no checkpoint in 60 s"
            time.sleep(0.05)
        # Iteration 4 or 5 is running now: well before the next checkpoint at iteration 7.
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _last_checkpoint(out) == "model_0000003.pth"
    assert not (out / "final_weights.pth").exists()

    resumed = train_toy(str(out), max_iter, period, sleep=0.0)
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert _last_checkpoint(out) == "model_final.pth"
