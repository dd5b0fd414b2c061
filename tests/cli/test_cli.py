"""The ``d2lite`` command (d2lite.cli): its help, and each subcommand on tiny data, in process."""
from __future__ import annotations

import csv
import json
import logging
import sysconfig
from pathlib import Path

import pytest
import torch
from PIL import Image

from d2lite import __version__
from d2lite.cli import COMMANDS, main

TINY = "tiny/faster_rcnn_tiny.yaml"
TINY_TRASH = "tiny/faster_rcnn_tiny_trash.yaml"
FAST = ["SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("train", "eval", "predict", "check", "visualize", "analyze", "benchmark"):
        assert f"\n  {name} " in out, name
    assert "make-trash" in out and "plot-metrics" in out and "--dataset train=" in out
    assert main([]) == 2 and "usage: d2lite" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    # Every parser names itself after the subcommand, however d2lite was started.
    assert out.startswith(f"usage: d2lite {name} ") and "--help" in out


def test_unknown_subcommand_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["trian"])
    assert exc.value.code == 2 and "unknown subcommand 'trian'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"d2lite {__version__}"


def test_the_editable_install_put_the_d2lite_script_in_the_venv():
    script = Path(sysconfig.get_path("scripts")) / "d2lite"
    assert script.is_file(), f"{script} is missing: reinstall with pip install -e ."
    assert "d2lite.cli" in script.read_text()


@pytest.fixture
def d2lite_log(caplog) -> pytest.LogCaptureFixture:
    """The records of the "d2lite" logger, which does not propagate to the root logger."""
    logger = logging.getLogger("d2lite")
    logger.addHandler(caplog.handler)
    # The handler makes ensure_logger() skip setup_logger, so the level is set here.
    caplog.set_level(logging.INFO, logger="d2lite")
    yield caplog
    logger.removeHandler(caplog.handler)


# The printed summaries are checked in test_own_data_commands.py, through the installed
# script: capsys here would leave the run's log handlers writing to a closed stream.
def test_train_eval_predict_in_process(own_data, tmp_path, forget_datasets):
    forget_datasets += ["cli_train", "cli_val"]
    out = tmp_path / "out"
    data = [f"--dataset=cli_train={own_data / 'train.json'}"]
    data += [f"--dataset=cli_val={own_data / 'val.json'}"]
    assert main(["train", "--config-file", TINY_TRASH, *data, *FAST, "OUTPUT_DIR", str(out)]) == 0
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [m["iteration"] for m in metrics if "total_loss" in m] == [1]
    assert any("bbox/AP-paper" in m for m in metrics), "evaluated on cli_val's 3 classes"
    state = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)["model"]
    assert state["roi_heads.box_predictor.cls_score.weight"].shape[0] == 3 + 1, "3 JSON classes"
    weights = ["MODEL.WEIGHTS", str(out / "model_final.pth")]
    config = ["--config-file", str(out / "config.yaml")]
    (out / "inference" / "coco_instances_results.json").unlink()
    assert main(["eval", *config, *weights]) == 0
    assert (out / "inference" / "coco_instances_results.json").is_file()
    pred = tmp_path / "pred"
    images = ["--input", str(own_data / "test"), "--output", str(pred)]
    assert main(["predict", *config, *images, *weights]) == 0
    with open(pred / "submission.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert [r[1] for r in rows[1:]] == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]
    labels = [int(v) for r in rows[1:] for v in r[0].split()[0::6]]
    assert labels and all(0 <= c < 3 for c in labels)


def test_check_visualize_analyze_make_trash(
    own_data, tmp_path, forget_datasets, capsys, d2lite_log
):
    forget_datasets += ["cli_train"]
    assert main(["check", "--dataset", f"cli_train={own_data / 'train.json'}"]) == 0
    assert "Result: OK" in capsys.readouterr().out
    broken = json.loads((own_data / "train.json").read_text())
    broken["annotations"][0]["image_id"] = 99
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert main(["check", str(tmp_path / "broken.json"), str(own_data)]) == 1
    pictures = tmp_path / "gt"
    main(["visualize", "--config-file", TINY, "--dataset", f"cli_train={own_data / 'train.json'}"]
         + ["--source", "annotation", "--output", str(pictures), "--num", "2"])
    assert sorted(p.name for p in pictures.iterdir()) == ["0000.png", "0001.png"]
    # --tasks takes several values: the overrides come after another option.
    tasks = ["--tasks", "parameter", "--max-depth", "4", "MODEL.ROI_HEADS.NUM_CLASSES", "4"]
    main(["analyze", "--config-file", TINY, *tasks])
    assert "box_predictor.cls_score" in d2lite_log.text and "(5, 64)" in d2lite_log.text
    trash = tmp_path / "trash"
    main(["make-trash", str(trash), "--train", "2", "--val", "1", "--test", "1", "--size", "64"])
    assert len(json.loads((trash / "train.json").read_text())["images"]) == 2
    with Image.open(trash / "val" / "0000.jpg") as img:
        assert img.size == (64, 64)


def test_benchmark_subcommand(capsys):
    main(["benchmark", "--config-file", TINY, "--task", "eval", "--size", "64"]
         + ["--iters", "1", "--warmup", "0", "--rounds", "1", "--threads", "1"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("d2lite"))
    assert float(row.split()[1]) > 0 and "eval at 64x64" in out


def test_plot_metrics_subcommand(tmp_path):
    rows = [{"iteration": i, "total_loss": 2.0 - i, "lr": 0.01} for i in range(3)]
    (tmp_path / "metrics.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["plot-metrics", str(tmp_path)]) == 0
    with Image.open(tmp_path / "training_curves.png") as img:
        assert img.size[0] > 100
