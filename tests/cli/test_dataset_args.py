"""``--dataset NAME=JSON[:IMAGE_ROOT]`` and ``DATASETS.COCO_REGISTER``
(d2lite.data.datasets.coco_register), and the config loading of the subcommands."""
from __future__ import annotations

import logging
import os

import pytest

from d2lite import model_zoo
from d2lite.cli.common import load_config, resolve_config_file
from d2lite.config import get_cfg
from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.datasets import parse_dataset_arg, register_coco_instances, setup_coco_datasets

from .conftest import OWN_CLASSES

TINY = model_zoo.get_config_file("tiny/faster_rcnn_tiny.yaml")
TINY_TRASH = model_zoo.get_config_file("tiny/faster_rcnn_tiny_trash.yaml")


def test_parse_dataset_arg_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_dataset_arg("train=d/train.json:d/images") == [
        "train", str(tmp_path / "d/train.json"), str(tmp_path / "d/images")
    ]
    # Without IMAGE_ROOT, the JSON's folder (where make_trash_dataset puts the images).
    assert parse_dataset_arg("val=/data/val.json") == ["val", "/data/val.json", "/data"]
    # The JSON path ends at ".json:", so an image root may hold ":".
    assert parse_dataset_arg("t=/a/t.json:/b:c") == ["t", "/a/t.json", "/b:c"]
    assert parse_dataset_arg("x=/a/ann:/imgs") == ["x", "/a/ann", "/imgs"]
    for bad in ("train.json:images", "=a.json", "train=", "train=:images"):
        with pytest.raises(ValueError, match="NAME=JSON_FILE"):
            parse_dataset_arg(bad)


def _args(own_data, *names: str) -> list[str]:
    split = {"cli_train": "train", "cli_val": "val", "cli_test": "test"}
    return [f"{n}={own_data / (split[n] + '.json')}:{own_data}" for n in names]


def test_dataset_args_register_set_splits_and_follow_the_json_classes(own_data, forget_datasets):
    forget_datasets += ["cli_train", "cli_val"]
    cfg = get_cfg()
    cfg.merge_from_file(TINY_TRASH)
    args = _args(own_data, "cli_train", "cli_val")
    names = setup_coco_datasets(cfg, args, config_file=TINY_TRASH)
    assert names == ["cli_train", "cli_val"]
    assert cfg.DATASETS.TRAIN == ("cli_train",) and cfg.DATASETS.TEST == ("cli_val",)
    # The tiny trash config inherits NUM_CLASSES 10 with its trash datasets; ours has 3.
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3
    assert cfg.DATASETS.COCO_REGISTER == [
        ["cli_train", str(own_data / "train.json"), str(own_data)],
        ["cli_val", str(own_data / "val.json"), str(own_data)],
    ]
    assert MetadataCatalog.get("cli_train").thing_classes == OWN_CLASSES
    dicts = DatasetCatalog.get("cli_train")
    assert len(dicts) == 6 and dicts[0]["file_name"] == str(own_data / "train/0000.jpg")
    # Category ids 1..3 became the contiguous 0..2 the model trains on.
    assert {a["category_id"] for d in dicts for a in d["annotations"]} <= {0, 1, 2}


def test_explicit_num_classes_and_datasets_are_kept(own_data, forget_datasets, tmp_path, caplog):
    forget_datasets += ["cli_train", "cli_val"]
    opts = ["MODEL.ROI_HEADS.NUM_CLASSES", "5", "DATASETS.TEST", "()"]
    cfg = get_cfg()
    cfg.merge_from_file(TINY_TRASH)
    cfg.merge_from_list(opts)
    with caplog.at_level(logging.WARNING, logger="d2lite"):
        setup_coco_datasets(
            cfg, _args(own_data, "cli_train", "cli_val"), config_file=TINY_TRASH, opts=opts
        )
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 5 and cfg.DATASETS.TEST == ()
    assert cfg.DATASETS.TRAIN == ("cli_train",)
    assert "NUM_CLASSES is set to 5, but dataset 'cli_train' has 3 categories" in caplog.text
    # A config file's own NUM_CLASSES is explicit too (the tiny config says 2) ...
    cfg = get_cfg()
    cfg.merge_from_file(TINY)
    setup_coco_datasets(cfg, _args(own_data, "cli_train"), config_file=TINY)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 2
    # ... but not one it inherits through _BASE_.
    child = tmp_path / "child.yaml"
    child.write_text(f'_BASE_: "{TINY}"\nSOLVER:\n  MAX_ITER: 7\n')
    cfg = get_cfg()
    cfg.merge_from_file(str(child))
    setup_coco_datasets(cfg, _args(own_data, "cli_train"), config_file=str(child))
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3


def test_config_form_registers_before_loaders_with_absolute_paths(
    own_data, forget_datasets, tmp_path, monkeypatch
):
    forget_datasets += ["cli_train"]
    monkeypatch.chdir(own_data.parent)
    cfg_file = tmp_path / "own.yaml"
    cfg_file.write_text(
        f'_BASE_: "{TINY}"\n'
        "DATASETS:\n"
        f'  COCO_REGISTER: [["cli_train", "{own_data.name}/train.json", "{own_data.name}"]]\n'
        '  TRAIN: ("cli_train",)\n'
    )
    cfg = load_config(str(cfg_file), ["SOLVER.MAX_ITER", "1"])
    assert cfg.is_frozen() and cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3
    assert cfg.DATASETS.COCO_REGISTER == [
        ["cli_train", str(own_data / "train.json"), str(own_data)]
    ]
    assert len(DatasetCatalog.get("cli_train")) == 6


def test_registration_errors_name_the_dataset(own_data, forget_datasets, tmp_path):
    forget_datasets += ["cli_clash", "cli_train"]
    with pytest.raises(FileNotFoundError, match="'cli_train'.*nothing.json"):
        setup_coco_datasets(get_cfg(), [f"cli_train={tmp_path / 'nothing.json'}"])
    with pytest.raises(FileNotFoundError, match="'cli_train'.*image folder"):
        setup_coco_datasets(get_cfg(), [f"cli_train={own_data / 'train.json'}:{tmp_path / 'x'}"])
    cfg = get_cfg()
    cfg.DATASETS.COCO_REGISTER = [["cli_train", "a.json"]]
    with pytest.raises(ValueError, match="COCO_REGISTER entries are"):
        setup_coco_datasets(cfg)
    # A name a script registered with other files is not silently replaced.
    register_coco_instances("cli_clash", {}, str(own_data / "val.json"), str(own_data))
    with pytest.raises(ValueError, match="Cannot register dataset 'cli_clash'"):
        setup_coco_datasets(get_cfg(), [f"cli_clash={own_data / 'train.json'}"])


def test_running_setup_again_replaces_its_own_registration(own_data, forget_datasets):
    # A notebook cell or a second main() in one process points a name at other files.
    forget_datasets += ["cli_train"]
    setup_coco_datasets(get_cfg(), [f"cli_train={own_data / 'val.json'}"])
    assert len(DatasetCatalog.get("cli_train")) == 3
    setup_coco_datasets(get_cfg(), [f"cli_train={own_data / 'train.json'}"])
    assert len(DatasetCatalog.get("cli_train")) == 6


def test_config_file_may_be_a_model_zoo_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository: no model_zoo/ folder here
    path = resolve_config_file("tiny/faster_rcnn_tiny_trash.yaml")
    assert os.path.isfile(path) and path.endswith("tiny/faster_rcnn_tiny_trash.yaml")
    (tmp_path / "mine.yaml").write_text("SOLVER:\n  MAX_ITER: 3\n")
    assert resolve_config_file("mine.yaml") == "mine.yaml"
    with pytest.raises(FileNotFoundError, match="nope.yaml does not exist"):
        resolve_config_file("tiny/nope.yaml")
    assert load_config("tiny/faster_rcnn_tiny_trash.yaml").MODEL.ROI_HEADS.NUM_CLASSES == 10
