"""flush_denormals: denormal inputs read as zero in every intra-op thread; normal values are
untouched; build_model turns it on for CPU models unless MODEL.FLUSH_DENORMAL is off."""
from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from d2lite.layers import flush_denormals

_SCRIPT = """
import torch
from d2lite.config import get_cfg
from d2lite.modeling import build_model
torch.set_num_threads(2)
x = torch.full((1 << 20,), 1e-39)  # filled, not computed: stays denormal
assert (x * 1.0).ne(0).all()  # the pool now exists, without flushing
cfg = get_cfg()
cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
cfg.MODEL.FLUSH_DENORMAL = {flag}
build_model(cfg)
y = x * 1.0
print(int(y.eq(0).sum()), int(y.numel()))
print(float(torch.tensor(3e-38) * 1.0))
"""


REPO = Path(__file__).resolve().parents[2]
X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.mark.skipif(not X86, reason="denormal flushing is an x86 CPU feature")
@pytest.mark.parametrize("flag", [True, False])
def test_build_model_flushes_denormals_in_all_threads(flag):
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(flag=flag)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    zeros, total, normal = out.stdout.split()
    # Both halves of the array (one per thread) are flushed, or none is.
    assert int(zeros) == (int(total) if flag else 0)
    assert float(normal) == pytest.approx(3e-38)


@pytest.mark.skipif(not X86, reason="denormal flushing is an x86 CPU feature")
def test_flush_denormals_can_be_turned_off_again():
    assert flush_denormals(True)
    assert float(torch.tensor(1e-39) * 1.0) == 0.0
    assert flush_denormals(False)
    assert float(torch.tensor(1e-39) * 1.0) > 0.0
