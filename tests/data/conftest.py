"""Fixtures for the data tests: a tiny COCO dataset on disk and catalog isolation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from d2lite.data import DatasetCatalog, MetadataCatalog


@pytest.fixture
def clean_catalogs():
    """Restore both catalogs after the test, so registrations never leak between tests."""
    datasets = dict(DatasetCatalog)
    metadata = dict(MetadataCatalog)
    yield
    DatasetCatalog.clear()
    DatasetCatalog.update(datasets)
    MetadataCatalog.clear()
    MetadataCatalog.update(metadata)


def write_coco(root: Path, first_cat_id: int = 0, with_empty: bool = True) -> Path:
    """Write 3 (or 4) small images and a COCO json describing them; return the json path.

    Image 1 is 40x30 (w x h) with a red box at x 5..15, y 2..12 (category ``first_cat_id``)
    and a green box at x 20..35, y 10..25 (category ``first_cat_id + 1``); image 2 is 24x32
    (portrait) with one box; image 3 is 48x20 with one box; image 4 (optional) has none.
    """
    (root / "train").mkdir(parents=True, exist_ok=True)
    red, green, blue, yellow = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
    specs = [
        (1, "train/a.png", 40, 30, [([5, 2, 10, 10], 0, red), ([20, 10, 15, 15], 1, green)]),
        (2, "train/b.png", 24, 32, [([4, 4, 8, 20], 1, blue)]),
        (3, "train/c.png", 48, 20, [([10, 5, 30, 10], 0, yellow)]),
    ]
    if with_empty:
        specs.append((4, "train/d.png", 16, 16, []))
    images, annotations = [], []
    for image_id, name, w, h, boxes in specs:
        arr = np.zeros((h, w, 3), dtype=np.uint8)
        for (x, y, bw, bh), _, color in boxes:
            arr[y : y + bh, x : x + bw] = color
        Image.fromarray(arr).save(root / name)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for bbox, cat, _ in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "bbox": bbox,
                    "category_id": first_cat_id + cat,
                    "iscrowd": 0,
                    "area": bbox[2] * bbox[3],
                }
            )
    categories = [{"id": first_cat_id, "name": "red"}, {"id": first_cat_id + 1, "name": "green"}]
    json_file = root / "train.json"
    json_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return json_file


@pytest.fixture
def coco_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny COCO dataset with category ids starting at 0: (json file, image root)."""
    return write_coco(tmp_path), tmp_path


@pytest.fixture
def make_coco():
    """The ``write_coco`` helper, for tests that need a variant of the tiny dataset."""
    return write_coco
