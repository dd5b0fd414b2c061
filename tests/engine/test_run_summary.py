"""What a DefaultTrainer run says before it starts, and the long dumps it keeps off the
terminal (model.txt, config.yaml and log.txt at DEBUG)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from test_defaults import CocoTrainer, ToyDataTrainer, tiny_cfg

from d2lite.engine import default_setup
from d2lite.utils.run_summary import _dataset_size, count_parameters, describe_training
from d2lite.utils.logger import setup_logger


def _plan(caplog) -> str:
    plans = [r for r in caplog.records if r.getMessage().startswith("Training plan:")]
    assert len(plans) == 1 and plans[0].levelno == logging.INFO
    return plans[0].getMessage()


def test_training_plan_and_model_txt(tmp_path, caplog, trash_datasets):
    cfg = tiny_cfg(tmp_path)
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    cfg.DATASETS.TEST = (trash_datasets["val"],)
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.SOLVER.MAX_ITER = 2
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 10
    with caplog.at_level(logging.DEBUG, logger="d2lite"):
        trainer = CocoTrainer(cfg)
        trainer.train()
    plan = _plan(caplog)
    assert "data:       engine_trash_train: 4 images; 10 classes (General trash, Paper," in plan
    assert ", ...)" in plan  # more than 8 names are cut
    total, trainable = count_parameters(trainer.model)
    assert f"model:      GeneralizedRCNN (backbone: TinyBackbone), {total:,} parameters" in plan
    assert "schedule:   2 iterations of 2 images = 1.0 epochs; SGD, base LR" in plan
    assert "device:     cpu, 1 process" in plan
    assert "evaluation: engine_trash_val after the last iteration" in plan
    assert f"outputs:    {cfg.OUTPUT_DIR} (metrics.json, model.txt, model_final.pth" in plan
    model_txt = (tmp_path / "out" / "model.txt").read_text()
    assert model_txt.startswith("GeneralizedRCNN(") and f"Parameters: {total:,}" in model_txt
    assert f"({trainable:,} trainable)" in model_txt
    # The architecture is logged once, at DEBUG (log.txt), never at INFO (the terminal).
    dumps = [r for r in caplog.records if r.getMessage().startswith("Model:\n")]
    assert [r.levelno for r in dumps] == [logging.DEBUG]


def test_training_plan_says_when_nothing_is_evaluated_and_where_it_resumes(tmp_path, caplog):
    cfg = tiny_cfg(tmp_path)
    cfg.DATASETS.TEST = ("some_val",)
    trainer = ToyDataTrainer(cfg)
    trainer.start_iter = 1
    plan = describe_training(trainer)
    assert "evaluation: none (DefaultTrainer.build_evaluator is not implemented" in plan
    # A generator has no length: no image count and no epochs, rather than a guess.
    assert "data:       build_train_loader (DATASETS.TRAIN is empty)\n" in plan
    assert "2 iterations (resuming at 1) of 2 images; SGD, base LR 0.01, warmup 1\n" in plan
    assert _dataset_size(trainer.data_loader) is None


def test_default_setup_keeps_the_dumps_off_the_terminal(tmp_path, capsys):
    cfg = tiny_cfg(tmp_path)
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    setup_logger.cache_clear()
    default_setup(cfg, SimpleNamespace(config_file="", eval_only=False))
    for h in logging.getLogger("d2lite").handlers:
        h.flush()
    terminal = capsys.readouterr().out
    log_txt = (tmp_path / "run" / "log.txt").read_text()
    assert "Full config saved to" in terminal and "Full config saved to" in log_txt
    for dump in ("Environment info:", "Running with full config:"):
        assert dump not in terminal and dump in log_txt
    assert len(terminal.splitlines()) < 10
