from __future__ import annotations

import os
import sys

import pytest

# The tests import their toys as `engine_toys` (pytest runs with --import-mode=importlib, which
# leaves sys.path alone); spawned workers inherit sys.path and find them too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def trash_datasets(tmp_path):
    from d2lite.data import DatasetCatalog, MetadataCatalog
    from d2lite.data.datasets.coco import register_coco_instances
    from d2lite.extras.synthetic import make_trash_dataset

    root = str(tmp_path / "trash")
    paths = make_trash_dataset(root, num_train=4, num_val=2, num_test=0, image_size=64)
    names = {"train": "engine_trash_train", "val": "engine_trash_val"}
    for split, name in names.items():
        register_coco_instances(name, {}, paths[split], root)
    yield names
    for name in names.values():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
