"""The README's "Your own data from the command line": train, evaluate and predict with the
installed ``d2lite`` script, from a directory outside the repository, on a COCO JSON of 3 classes.

The same commands as the README's, with the tiny model and 3 iterations instead of the CPU demo
config, for speed.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch
import yaml

from d2lite import __version__

REPO = Path(__file__).resolve().parents[2]
D2LITE = str(Path(sysconfig.get_path("scripts")) / "d2lite")
FAST = ["SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "2", "MODEL.DEVICE", "cpu"]


def _run(cmd: list[str], cwd: Path) -> str:
    # Nothing of the repository on the path: what runs is the installed package.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "D2LITE_DATASETS")}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_train_eval_predict_from_outside_the_repository(own_data, tmp_path):
    assert REPO not in tmp_path.parents
    shutil.copytree(own_data, tmp_path / "data")
    datasets = ["--dataset", "train=data/train.json", "--dataset", "test=data/val.json"]
    printed = _run(
        [D2LITE, "train", "--config-file", "tiny/faster_rcnn_tiny_trash.yaml", *datasets]
        + [*FAST, "OUTPUT_DIR", "runs/mine"],
        tmp_path,
    )
    run = tmp_path / "runs" / "mine"
    assert "d2lite training (3 iterations) finished" in printed and "bbox AP=" in printed
    assert f"model weights:  {run / 'model_final.pth'}" in printed
    saved = yaml.safe_load((run / "config.yaml").read_text())
    # The data, as absolute paths, and the number of classes its JSON has.
    assert saved["DATASETS"]["COCO_REGISTER"] == [
        ["train", str(tmp_path / "data/train.json"), str(tmp_path / "data")],
        ["test", str(tmp_path / "data/val.json"), str(tmp_path / "data")],
    ]
    assert saved["DATASETS"]["TRAIN"] == ["train"] and saved["DATASETS"]["TEST"] == ["test"]
    assert saved["MODEL"]["ROI_HEADS"]["NUM_CLASSES"] == 3
    weights = torch.load(run / "model_final.pth", map_location="cpu", weights_only=False)
    assert weights["model"]["roi_heads.box_predictor.cls_score.weight"].shape[0] == 4

    trained = ["--config-file", "runs/mine/config.yaml"]
    trained += ["MODEL.WEIGHTS", "runs/mine/model_final.pth"]
    (run / "inference" / "coco_instances_results.json").unlink()
    printed = _run([D2LITE, "eval", *trained], tmp_path)
    assert "d2lite evaluation finished" in printed and "per class AP: bottle" in printed
    assert (run / "inference" / "coco_instances_results.json").is_file()

    inputs = ["--input", "data/test.json", "--output", "runs/mine/predictions"]
    _run([D2LITE, "predict", *inputs, *trained], tmp_path)
    with open(run / "predictions" / "submission.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["PredictionString", "image_id"]
    assert [r[1] for r in rows[1:]] == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]
    assert all(0 <= int(c) < 3 for r in rows[1:] for c in r[0].split()[0::6])
    assert (run / "predictions" / "test" / "0000.jpg").is_file()


def test_python_dash_m_d2lite_is_the_same_command(tmp_path):
    assert _run([sys.executable, "-m", "d2lite", "--version"], tmp_path).strip() == (
        f"d2lite {__version__}"
    )
    assert _run([D2LITE, "--version"], tmp_path).strip() == f"d2lite {__version__}"
