"""Own data for the ``d2lite`` command tests: a COCO dataset that is not the built-in trash data.

The synthetic trash images relabelled into 3 categories with ids 1..3, so that a model that
follows the JSON has 3 classes (the trash configs say 10) and the ids need the contiguous map.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.extras.synthetic import make_trash_dataset

OWN_CLASSES = ["bottle", "can", "paper"]


@pytest.fixture(scope="session")
def own_data(tmp_path_factory) -> Path:
    """``train.json``, ``val.json``, ``test.json`` and their images (64 px): 6, 3, 3 images."""
    root = tmp_path_factory.mktemp("own_data")
    make_trash_dataset(str(root), num_train=6, num_val=3, num_test=3, image_size=64, seed=2)
    for split in ("train", "val", "test"):
        path = root / f"{split}.json"
        data = json.loads(path.read_text())
        data["categories"] = [{"id": i + 1, "name": n} for i, n in enumerate(OWN_CLASSES)]
        for ann in data["annotations"]:
            ann["category_id"] = ann["category_id"] % 3 + 1
        path.write_text(json.dumps(data))
    return root


@pytest.fixture
def forget_datasets() -> Iterator[list[str]]:
    """Names appended to the yielded list are unregistered after the test."""
    names: list[str] = []
    yield names
    for name in names:
        if name in DatasetCatalog:
            DatasetCatalog.remove(name)
        if name in MetadataCatalog:
            MetadataCatalog.remove(name)
