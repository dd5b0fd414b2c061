"""Tests for d2lite.config: defaults, _BASE_ merging, overrides, dumps and every error."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from d2lite import model_zoo
from d2lite.config import STRICT_ENV, CfgNode, check_cfg_keys, find_unknown_keys, get_cfg

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def test_defaults_match_detectron2():
    reference = json.loads((FIXTURES / "detectron2_faster_rcnn_defaults.json").read_text())
    cfg = get_cfg()
    assert len(reference) == 138
    for key, value in reference.items():
        assert _plain(_get(cfg, key)) == value, key


def test_get_cfg_returns_fresh_copies():
    a, b = get_cfg(), get_cfg()
    a.SOLVER.BASE_LR = 1.0
    assert b.SOLVER.BASE_LR == 0.001


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_base_single_and_nested(tmp_path):
    _write(tmp_path / "a.yaml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\n")
    _write(tmp_path / "sub" / "b.yaml", "_BASE_: ../a.yaml\nSOLVER:\n  MAX_ITER: 20\n")
    c = _write(tmp_path / "sub" / "c.yaml", "_BASE_: b.yaml\nSEED: 3\n")
    cfg = get_cfg()
    cfg.merge_from_file(c)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, cfg.SEED) == (0.5, 20, 3)


def test_base_list_merged_in_order(tmp_path):
    _write(tmp_path / "m.yaml", "MODEL:\n  RESNETS:\n    DEPTH: 101\nSOLVER:\n  BASE_LR: 0.1\n")
    _write(tmp_path / "s.yaml", "SOLVER:\n  BASE_LR: 0.2\n  STEPS: (5, 8)\n")
    top = _write(tmp_path / "top.yaml", "_BASE_: [m.yaml, s.yaml]\nSOLVER:\n  MAX_ITER: 9\n")
    cfg = get_cfg()
    cfg.merge_from_file(top)
    assert cfg.MODEL.RESNETS.DEPTH == 101
    assert cfg.SOLVER.BASE_LR == 0.2  # the later base wins
    assert cfg.SOLVER.STEPS == (5, 8)
    assert cfg.SOLVER.MAX_ITER == 9


def test_base_cycle_is_reported(tmp_path):
    _write(tmp_path / "a.yaml", "_BASE_: b.yaml\n")
    _write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(ValueError, match="Cycle in _BASE_.*a.yaml.*b.yaml.*a.yaml"):
        get_cfg().merge_from_file(str(tmp_path / "a.yaml"))


def test_missing_base_names_the_file(tmp_path):
    top = _write(tmp_path / "top.yaml", "_BASE_: nowhere.yaml\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml.*top.yaml"):
        get_cfg().merge_from_file(top)


def test_unknown_key_in_yaml_names_key_file_and_suggestion(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(KeyError) as err:
        get_cfg().merge_from_file(bad)
    msg = str(err.value)
    assert "SOLVER.BASE_LRR" in msg and "bad.yaml" in msg and "SOLVER.BASE_LR" in msg


def test_unknown_key_on_command_line():
    with pytest.raises(KeyError, match="DATALOADER.NUM_WOKERS.*command-line.*DATALOADER.NUM_WORKERS"):
        get_cfg().merge_from_list(["DATALOADER.NUM_WOKERS", "2"])


def test_wrong_type_names_key_and_types(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  MAX_ITER: fast\n")
    with pytest.raises(ValueError, match=r"SOLVER.MAX_ITER.*bad.yaml.*int.*str"):
        get_cfg().merge_from_file(bad)
    with pytest.raises(ValueError, match="MODEL.MASK_ON.*bool"):
        get_cfg().merge_from_list(["MODEL.MASK_ON", "1"])


def test_merge_from_list_parses_literals():
    cfg = get_cfg()
    cfg.merge_from_list(
        ["SOLVER.BASE_LR", "0.01", "SOLVER.STEPS", "(100, 200)", "MODEL.DEVICE", "cpu",
         "SOLVER.WEIGHT_DECAY", "0", "DATASETS.TRAIN", "('a', 'b')"]
    )
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.SOLVER.STEPS == (100, 200)
    assert cfg.MODEL.DEVICE == "cpu"
    assert isinstance(cfg.SOLVER.WEIGHT_DECAY, float) and cfg.SOLVER.WEIGHT_DECAY == 0.0
    assert cfg.DATASETS.TRAIN == ("a", "b")
    with pytest.raises(ValueError, match="pairs"):
        cfg.merge_from_list(["SOLVER.BASE_LR"])


def test_dump_round_trips(tmp_path):
    cfg = model_zoo.get_config("COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml")
    cfg.merge_from_list(["SOLVER.BASE_LR", "0.0025", "MODEL.ROI_HEADS.NUM_CLASSES", "10"])
    path = _write(tmp_path / "dumped.yaml", cfg.dump())
    again = get_cfg()
    again.merge_from_file(path)
    assert again == cfg


def test_python_configs_are_never_executed(tmp_path):
    marker = tmp_path / "ran"
    py = _write(tmp_path / "cfg.py", f"open({str(marker)!r}, 'w').write('x')\n")
    with pytest.raises(ValueError, match="never executed"):
        get_cfg().merge_from_file(py)
    assert not marker.exists()


def test_invalid_yaml_names_the_file(tmp_path):
    bad = _write(tmp_path / "broken.yaml", "SOLVER: [unclosed\n")
    with pytest.raises(ValueError, match="broken.yaml"):
        get_cfg().merge_from_file(bad)


def test_typo_set_by_attribute_is_reported(caplog, monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WOREKRS = 2
    assert find_unknown_keys(cfg) == ["DATALOADER.NUM_WOREKRS"]
    assert check_cfg_keys(cfg) == ["DATALOADER.NUM_WOREKRS"]  # Detectron2 runs on: so do we
    assert "DATALOADER.NUM_WOREKRS Did you mean DATALOADER.NUM_WORKERS?" in caplog.text
    assert STRICT_ENV in caplog.text  # the warning says how to refuse instead
    with pytest.raises(KeyError, match="DATALOADER.NUM_WOREKRS.*Did you mean DATALOADER.NUM_WORKERS"):
        check_cfg_keys(cfg, strict=True)
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(KeyError, match="DATALOADER.NUM_WOREKRS"):
        check_cfg_keys(cfg)


@pytest.mark.parametrize(
    "attr, value, suggestion",
    [
        ("SOLVER.BASR_LR", 0.1, "SOLVER.BASE_LR"),
        ("MODEL_DEVICE", "cpu", "MODEL.DEVICE"),
        ("MODEL.ROI_HEADS.NUM_CLASS", 3, "MODEL.ROI_HEADS.NUM_CLASSES"),
    ],
)
def test_course_script_typos_warn_with_the_nearest_key(caplog, monkeypatch, attr, value, suggestion):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    cfg = get_cfg()
    node = cfg
    *groups, leaf = attr.split(".")
    for g in groups:
        node = node[g]
    setattr(node, leaf, value)
    assert check_cfg_keys(cfg) == [attr]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert f"{attr} Did you mean {suggestion}?" in warnings[0].getMessage()


def test_a_number_key_holding_a_string_is_named():
    cfg = get_cfg()
    cfg.SOLVER.MAX_ITER = "10"
    with pytest.raises(ValueError, match="SOLVER.MAX_ITER must be a number.*'10'"):
        check_cfg_keys(cfg)


def test_lenient_types_that_detectron2_accepts_pass():
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = 800  # an int where the default is a tuple
    cfg.DATASETS.TRAIN = "my_train"  # a str where the default is a tuple
    cfg.SOLVER.BASE_LR = 1  # an int where the default is a float
    assert check_cfg_keys(cfg) == []


def test_deliberate_extra_keys_only_warn(caplog):
    cfg = get_cfg()
    cfg.MY_PROJECT = CfgNode({"ALPHA": 1})
    check_cfg_keys(cfg)
    assert "MY_PROJECT" in caplog.text


def test_frozen_config_refuses_merges():
    cfg = get_cfg()
    cfg.freeze()
    with pytest.raises(AttributeError):
        cfg.merge_from_list(["SEED", "1"])


def test_every_detectron2_default_key_is_here_with_its_value():
    reference = json.loads((FIXTURES / "detectron2_all_defaults.json").read_text())
    cfg = get_cfg()
    assert len(reference) == 192  # every leaf key of Detectron2 0.6's get_cfg()
    for key, value in reference.items():
        assert _plain(_get(cfg, key)) == value, key


def test_keys_of_absent_heads_are_accepted(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.RETINANET.NUM_CLASSES = 10  # a course script sets both heads' class counts
    cfg.merge_from_list(["MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS", "5"])
    assert check_cfg_keys(cfg) == []


def test_a_config_yaml_dumped_by_detectron2_loads(tmp_path):
    # A Detectron2 dump holds every key of its get_cfg(), groups of absent heads included.
    reference = json.loads((FIXTURES / "detectron2_all_defaults.json").read_text())
    tree: dict = {}
    for key, value in reference.items():
        *groups, leaf = key.split(".")
        node = tree
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = value
    tree["MODEL"]["RETINANET"]["NUM_CLASSES"] = 10
    tree["MODEL"]["ROI_HEADS"]["NUM_CLASSES"] = 10
    import yaml

    path = _write(tmp_path / "config.yaml", yaml.safe_dump(tree))
    cfg = get_cfg()
    cfg.merge_from_file(path)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 10 and cfg.MODEL.RETINANET.NUM_CLASSES == 10
