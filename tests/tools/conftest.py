"""Shared tiny data for the tool tests: a synthetic trash dataset and a tiny-model config."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.datasets import register_coco_instances
from d2lite.extras.synthetic import TRASH_CLASSES, make_trash_dataset

REPO = Path(__file__).resolve().parents[2]


def _load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_tool() -> Callable[[str], ModuleType]:
    """``load_tool("predict")`` imports ``tools/predict.py`` (tools/ is not a package)."""
    return _load_tool


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def trash_dir(tmp_path_factory) -> Path:
    """6 train, 3 val, 3 test images of 64 px, registered as tools_trash_{train,val,test}."""
    root = tmp_path_factory.mktemp("trash")
    make_trash_dataset(str(root), num_train=6, num_val=3, num_test=3, image_size=64, seed=1)
    for split in ("train", "val", "test"):
        name = f"tools_trash_{split}"
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, str(root / f"{split}.json"), str(root))
            MetadataCatalog.get(name).thing_classes = list(TRASH_CLASSES)
    return root


@pytest.fixture(scope="session")
def tiny_config(trash_dir, tmp_path_factory) -> Path:
    """The tiny test model (model_zoo/tiny) with 10 classes on the tools_trash datasets."""
    path = tmp_path_factory.mktemp("cfg") / "tiny_trash.yaml"
    path.write_text(
        f'_BASE_: "{REPO / "model_zoo/tiny/faster_rcnn_tiny.yaml"}"\n'
        "MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 10\n"
        'DATASETS:\n  TRAIN: ("tools_trash_train",)\n  TEST: ("tools_trash_val",)\n'
    )
    return path
