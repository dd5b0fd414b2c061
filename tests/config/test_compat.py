"""Config versions: upgrade_config, downgrade_config, and reading old files."""
from __future__ import annotations

import pytest

from d2lite.config import downgrade_config, get_cfg, upgrade_config


def test_downgrade_then_upgrade_gives_the_same_config():
    cfg = get_cfg()
    cfg.USER_CUSTOM = 1  # a user's own key survives both ways
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[16, 32]]
    for version in (0, 1):
        assert upgrade_config(downgrade_config(cfg, to_version=version)) == cfg


def test_downgrade_renames_back_to_v1_names():
    old = downgrade_config(get_cfg(), to_version=1)
    assert old.VERSION == 1
    assert "WEIGHT" in old.MODEL and "WEIGHTS" not in old.MODEL
    assert old.MODEL.RPN.ANCHOR_SIZES == get_cfg().MODEL.ANCHOR_GENERATOR.SIZES
    assert old.TEST.AUG_ON is False
    v0 = downgrade_config(get_cfg(), to_version=0)
    assert v0.MODEL.RPN_HEAD.NAME == "StandardRPNHead" and "HEAD_NAME" not in v0.MODEL.RPN


def test_wrong_direction_is_refused():
    with pytest.raises(AssertionError):
        upgrade_config(get_cfg(), to_version=1)
    with pytest.raises(AssertionError):
        downgrade_config(downgrade_config(get_cfg(), 0), to_version=1)


def test_a_v0_file_is_upgraded_on_merge(tmp_path):
    path = tmp_path / "v0.yaml"
    path.write_text('MODEL:\n  RPN_HEAD:\n    NAME: "MyHead"\nVERSION: 0\n')
    cfg = get_cfg()
    cfg.USER_CUSTOM = 1
    cfg.merge_from_file(str(path))
    assert cfg.MODEL.RPN.HEAD_NAME == "MyHead"
    assert cfg.VERSION == 2 and cfg.USER_CUSTOM == 1


def test_a_file_with_v1_keys_is_read_as_v1(tmp_path):
    path = tmp_path / "v1.yaml"
    path.write_text('MODEL:\n  WEIGHT: "/path/to/weight.pkl"\nTEST:\n  AUG_ON: True\n')
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    assert cfg.MODEL.WEIGHTS == "/path/to/weight.pkl"
    assert cfg.TEST.AUG.ENABLED is True and cfg.VERSION == 2
