"""The training checks where a run starts: train_net's --from-scratch, the config a run saves,
DefaultTrainer before it builds anything, and DefaultPredictor on a copy of the config."""
from __future__ import annotations

import logging

import pytest

import d2lite.utils.logger as d2_logger
from d2lite.cli.train_net import get_parser, setup
from d2lite.config import get_cfg
from d2lite.engine import DefaultPredictor, DefaultTrainer
from d2lite.model_zoo import get_config_file

R50 = "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"
TV_MEAN = [123.675, 116.28, 103.53]


def _setup(tmp_path, *argv: str):
    args = get_parser().parse_args(
        ["--config-file", R50, *argv, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path)]
    )
    return setup(args)


def _saved(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_file(str(tmp_path / "config.yaml"))
    return cfg


def test_from_scratch_flag_sets_what_trains_from_random_weights_and_saves_it(tmp_path):
    cfg = _setup(tmp_path, "--from-scratch", "SOLVER.IMS_PER_BATCH", "2")
    for c in (cfg, _saved(tmp_path)):
        assert c.MODEL.WEIGHTS == ""
        assert c.MODEL.RESNETS.NORM == "GN" and c.MODEL.FPN.NORM == "GN"
        assert c.MODEL.BACKBONE.FREEZE_AT == 0


def test_from_scratch_keeps_a_value_the_user_set_on_the_command_line(tmp_path):
    cfg = _setup(tmp_path, "--from-scratch", "MODEL.RESNETS.NORM", "SyncBN")
    assert cfg.MODEL.RESNETS.NORM == "SyncBN"
    assert cfg.MODEL.BACKBONE.FREEZE_AT == 0 and cfg.MODEL.WEIGHTS == ""


def test_evaluation_has_no_from_scratch_flag(capsys):
    with pytest.raises(SystemExit):
        get_parser(eval_only=True).parse_args(["--from-scratch"])
    assert "unrecognized arguments: --from-scratch" in capsys.readouterr().err


def test_training_without_weights_warns_before_setup_but_evaluation_does_not(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="d2lite.config.training_checks"):
        cfg = _setup(tmp_path / "train", "MODEL.WEIGHTS", "")
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN"  # warned, not changed
    (warning,) = [r.getMessage() for r in caplog.records if r.name.endswith("training_checks")]
    assert "nothing is pretrained" in warning and "--from-scratch" in warning

    caplog.clear()
    d2_logger._LOG_COUNTER.clear()
    args = get_parser(eval_only=True).parse_args(
        ["--config-file", R50, "--eval-only", "MODEL.WEIGHTS", "", "OUTPUT_DIR", str(tmp_path)]
    )
    with caplog.at_level(logging.WARNING, logger="d2lite.config.training_checks"):
        setup(args)
    assert not [r for r in caplog.records if r.name.endswith("training_checks")]


def test_torchvision_weights_settings_are_in_the_config_a_run_saves(tmp_path, tv50_path):
    cfg = _setup(tmp_path, "MODEL.WEIGHTS", tv50_path)
    for c in (cfg, _saved(tmp_path)):
        assert c.INPUT.FORMAT == "RGB" and list(c.MODEL.PIXEL_MEAN) == TV_MEAN
        assert c.MODEL.RESNETS.STRIDE_IN_1X1 is False


class _Built(Exception):
    pass


class _StopAtModel(DefaultTrainer):
    @classmethod
    def build_model(cls, cfg):
        raise _Built(cfg)


def test_default_trainer_sets_torchvision_settings_before_it_builds_the_model(tv50_path):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(R50))
    cfg.MODEL.WEIGHTS = tv50_path
    cfg.freeze()
    with pytest.raises(_Built) as built:
        _StopAtModel(cfg)
    (seen,) = built.value.args
    assert seen.INPUT.FORMAT == "RGB" and seen.MODEL.RESNETS.STRIDE_IN_1X1 is False
    assert cfg.is_frozen()


def test_default_predictor_adjusts_its_own_copy_of_the_config(tv50_path):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(R50))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = tv50_path
    cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32, 32
    predictor = DefaultPredictor(cfg)
    assert predictor.input_format == "RGB" and predictor.cfg.INPUT.FORMAT == "RGB"
    assert predictor.model.input_format == "RGB"
    assert cfg.INPUT.FORMAT == "BGR"  # the caller's config is left as it was
