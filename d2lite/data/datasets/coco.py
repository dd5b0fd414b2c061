"""Read COCO-format detection json files into dataset dicts, and write dataset dicts back as COCO.

The json is parsed with the standard ``json`` module and indexed with plain dicts: pycocotools'
``COCO()`` is slower and prints to stdout.
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import logging
import math
import os
import time
from typing import Any

import numpy as np
import pycocotools.mask as mask_util

from ...structures import BoxMode
from ...utils.file_io import atomic_output
from ...utils.unsupported import unsupported_function
from ..catalog import DatasetCatalog, MetadataCatalog
from ..image_io import find_paths_outside_root

__all__ = [
    "load_coco_json",
    "load_sem_seg",
    "register_coco_instances",
    "convert_to_coco_dict",
    "convert_to_coco_json",
    "DatasetAlreadyRegisteredError",
]

logger = logging.getLogger(__name__)


class DatasetAlreadyRegisteredError(AssertionError):
    """``register_coco_instances`` of a name registered with other files.

    An ``AssertionError``, as Detectron2's ``DatasetCatalog.register`` raises for any second
    registration, so scripts that catch that type around their registrations keep working.
    """


def _read_json(json_file: str) -> dict:
    try:
        with open(json_file, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{json_file} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from e
    if not isinstance(data, dict):
        raise ValueError(f"{json_file}: expected a JSON object, got {type(data).__name__}")
    for key in ("images", "categories"):
        if key not in data:
            raise ValueError(f"{json_file} is missing the top-level key '{key}' of COCO format")
    return data


def _check_unique(items: list[dict], what: str, json_file: str) -> None:
    seen: set = set()
    for item in items:
        if "id" not in item:
            raise ValueError(f"{json_file}: an entry of '{what}' has no 'id': {item}")
        if item["id"] in seen:
            raise ValueError(f"{json_file}: duplicate {what} id {item['id']}")
        seen.add(item["id"])


def _category_mapping(categories: list[dict], json_file: str) -> tuple[list[str], dict[int, int]]:
    """Return the class names sorted by category id and the id -> contiguous index map."""
    _check_unique(categories, "categories", json_file)
    cats = sorted(categories, key=lambda c: c["id"])
    for c in cats:
        if "name" not in c:
            raise ValueError(f"{json_file}: category id {c['id']} has no 'name'")
    id_map = {c["id"]: i for i, c in enumerate(cats)}
    return [c["name"] for c in cats], id_map


def _group_annotations(data: dict, image_ids: set, json_file: str) -> dict[Any, list[dict]]:
    anns = data.get("annotations", [])
    if any("id" in a for a in anns):
        _check_unique(anns, "annotations", json_file)
    category_ids = {c["id"] for c in data["categories"]}
    per_image: dict[Any, list[dict]] = {}
    for a in anns:
        ann_id = a.get("id")
        if a.get("image_id") not in image_ids:
            raise ValueError(
                f"{json_file}: annotation id {ann_id} refers to image_id {a.get('image_id')}, "
                f"which is not in 'images'"
            )
        if a.get("category_id") not in category_ids:
            raise ValueError(
                f"{json_file}: annotation id {ann_id} has category_id {a.get('category_id')}, "
                f"which is not in 'categories'"
            )
        _check_bbox(a.get("bbox"), ann_id, json_file)
        per_image.setdefault(a["image_id"], []).append(a)
    return per_image


def _check_bbox(bbox: Any, ann_id: Any, json_file: str) -> None:
    if (
        not isinstance(bbox, (list, tuple))
        or len(bbox) != 4
        or not all(isinstance(v, (int, float)) for v in bbox)
    ):
        raise ValueError(f"{json_file}: annotation id {ann_id} needs a 4-number 'bbox', got {bbox}")
    # Python's json reads NaN and Infinity; such a box would turn the losses into NaN later.
    # A finite sum proves every value finite, at under half the cost of testing each (COCO has
    # 860k boxes); only an overflowing sum needs the full test.
    if not math.isfinite(sum(bbox)) and not all(math.isfinite(v) for v in bbox):
        raise ValueError(
            f"{json_file}: annotation id {ann_id} has a non-finite 'bbox' {bbox} (NaN or Infinity)"
        )


def _check_images(images: list[dict], json_file: str) -> None:
    _check_unique(images, "images", json_file)
    for img in images:
        for key in ("file_name", "height", "width"):
            if key not in img:
                raise ValueError(f"{json_file}: image id {img['id']} has no '{key}'")


def _warn_paths_outside_root(images: list[dict], image_root: str, json_file: str) -> None:
    """One warning for the whole dataset, with a count and the first few file names."""
    paths = [os.path.join(image_root, img["file_name"]) for img in images]
    outside = find_paths_outside_root(paths, image_root)
    if outside:
        examples = ", ".join(repr(images[i]["file_name"]) for i in outside[:3])
        logger.warning(
            f"{json_file}: {len(outside)} of {len(images)} image paths resolve outside "
            f"image_root {image_root!r} (a '../' or absolute file_name, or a symlink out of "
            f"it), e.g. {examples}"
        )


def _image_record(img: dict, image_root: str) -> dict:
    return {
        "file_name": os.path.join(image_root, img["file_name"]),
        "height": img["height"],
        "width": img["width"],
        "image_id": img["id"],
    }


def _annotation_record(anno: dict, ann_keys: list[str], json_file: str) -> dict | None:
    """The dataset-dict form of one COCO annotation; None if its polygons are all invalid."""
    assert anno.get("ignore", 0) == 0, f'{json_file}: "ignore" in a COCO json is not supported'
    obj = {key: anno[key] for key in ann_keys if key in anno}
    obj.setdefault("iscrowd", 0)
    obj["bbox_mode"] = BoxMode.XYWH_ABS
    segm = anno.get("segmentation")
    if segm:
        if isinstance(segm, dict):
            if isinstance(segm["counts"], list):  # uncompressed RLE -> compressed
                segm = mask_util.frPyObjects(segm, *segm["size"])
        else:
            segm = [poly for poly in segm if len(poly) % 2 == 0 and len(poly) >= 6]
            if not segm:
                return None
        obj["segmentation"] = segm
    keypoints = anno.get("keypoints")
    if keypoints:
        # COCO keypoints are integer pixel indices; +0.5 puts them at the pixel centres, in
        # the same continuous coordinates as boxes and polygons.
        obj["keypoints"] = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(keypoints)]
    return obj


def load_coco_json(
    json_file: str,
    image_root: str,
    dataset_name: str | None = None,
    extra_annotation_keys: list[str] | None = None,
) -> list[dict]:
    """Load a COCO instances json as Detectron2 dataset dicts.

    Args:
        json_file (str): path to the json.
        image_root (str): directory the json's ``file_name`` entries are relative to.
        dataset_name (str | None): if given, category ids are mapped to contiguous 0..K-1
            (sorted by id) and the dataset's metadata gets ``thing_classes`` and
            ``thing_dataset_id_to_contiguous_id``. Defaults to None (ids kept as in the file).
        extra_annotation_keys (list[str] | None): annotation keys to copy besides ``iscrowd``,
            ``bbox``, ``category_id``, ``segmentation`` and ``keypoints``. Defaults to None.

    Returns:
        list[dict]: one dict per image (``file_name``, ``height``, ``width``, ``image_id``,
        ``annotations``), sorted by image id as in Detectron2; images without annotations
        are kept. Boxes with no area, and instances whose polygons all have fewer than 3
        points, are dropped; RLE masks are compressed; keypoints move by +0.5 (pixel centres).

    Raises:
        ValueError: malformed JSON, missing keys, an annotation naming an unknown image or
            category, a bbox that is not 4 finite numbers, or a duplicate image/annotation/
            category id; the message names the file and the id.

    Image paths that resolve outside ``image_root`` are read, as in Detectron2, after one
    warning with their count.
    """
    start = time.perf_counter()
    data = _read_json(json_file)
    thing_classes, id_map = _category_mapping(data["categories"], json_file)
    _check_images(data["images"], json_file)
    per_image = _group_annotations(data, {img["id"] for img in data["images"]}, json_file)
    # Metadata is set only once the file is known to be valid.
    if dataset_name is not None:
        MetadataCatalog.get(dataset_name).set(
            thing_classes=thing_classes, thing_dataset_id_to_contiguous_id=id_map
        )
    else:
        id_map = None

    ann_keys = ["iscrowd", "bbox", "category_id"] + (extra_annotation_keys or [])
    images = sorted(data["images"], key=lambda i: i["id"])
    _warn_paths_outside_root(images, image_root, json_file)
    dataset_dicts, num_dropped, num_bad_segm = [], 0, 0
    for img in images:
        record = _image_record(img, image_root)
        objs = []
        for anno in per_image.get(img["id"], []):
            _, _, w, h = anno["bbox"]
            if w <= 0 or h <= 0:
                num_dropped += 1
                continue
            obj = _annotation_record(anno, ann_keys, json_file)
            if obj is None:
                num_bad_segm += 1
                continue
            if id_map is not None:
                obj["category_id"] = id_map[obj["category_id"]]
            objs.append(obj)
        record["annotations"] = objs
        dataset_dicts.append(record)

    if num_bad_segm:
        logger.warning(
            f"{json_file}: dropped {num_bad_segm} annotations whose polygons all have fewer "
            "than 3 points (as Detectron2 does)"
        )
    if num_dropped:
        logger.warning(f"{json_file}: dropped {num_dropped} annotations with width or height <= 0")
    logger.info(
        f"Loaded {len(dataset_dicts)} images in COCO format from {json_file} "
        f"in {time.perf_counter() - start:.2f}s"
    )
    return dataset_dicts


def _registered_files(func: Any) -> Any:
    """The (json_file, image_root) of a registration made here; the function itself otherwise."""
    if isinstance(func, functools.partial) and func.func is load_coco_json:
        return func.args[:2]
    return func


def register_coco_instances(name: str, metadata: dict, json_file: str, image_root: str) -> None:
    """Register a COCO-format dataset under ``name`` (lazily: nothing is read now).

    Registering a name twice is an error in Detectron2; here the same arguments again do
    nothing, so a notebook cell can be re-run.

    Args:
        name (str): dataset name, e.g. "my_train".
        metadata (dict): extra metadata, e.g. ``{}`` or ``{"thing_classes": [...]}``.
        json_file (str): path to the COCO json.
        image_root (str): directory containing the images.

    Raises:
        DatasetAlreadyRegisteredError: (an AssertionError) if ``name`` is already registered
            with another json file or image root; the message names both.
        AssertionError: if ``metadata`` gives an attribute already set to a different value.
    """
    assert isinstance(name, str), f"Dataset name must be a str, got {name!r}"
    assert isinstance(json_file, (str, os.PathLike)), f"json_file must be a path, got {json_file!r}"
    assert isinstance(image_root, (str, os.PathLike)), f"image_root must be a path: {image_root!r}"
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    if name in DatasetCatalog:
        old = _registered_files(DatasetCatalog[name])
        if old != (json_file, image_root):
            raise DatasetAlreadyRegisteredError(
                f"Dataset '{name}' is already registered with (json_file, image_root) = {old}; "
                f"cannot register it again with {(json_file, image_root)}"
            )
    else:
        # A partial (not a lambda) so the registration can be compared and pickled.
        DatasetCatalog.register(name, functools.partial(load_coco_json, json_file, image_root, name))
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata
    )


def _polygons_area(polygons: list) -> float:
    """Total area of flat ``[x0, y0, x1, y1, ...]`` polygons (shoelace formula)."""
    total = 0.0
    for poly in polygons:
        xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        x, y = xy[:, 0], xy[:, 1]
        total += 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return total


def _coco_box_and_area(anno: dict) -> tuple[list[float], float]:
    bbox = anno["bbox"]
    bbox = bbox.tolist() if isinstance(bbox, np.ndarray) else list(bbox)
    if len(bbox) not in (4, 5):
        raise ValueError(f"bbox must have 4 numbers (or 5 for a rotated box), got {bbox}")
    # COCO stores XYWH; a rotated box stays (cx, cy, w, h, angle).
    to_mode = BoxMode.XYWH_ABS if len(bbox) == 4 else BoxMode.XYWHA_ABS
    bbox = [float(x) for x in BoxMode.convert(bbox, anno["bbox_mode"], to_mode)]
    segm = anno.get("segmentation")
    if isinstance(segm, list):
        area = _polygons_area(segm)
    elif isinstance(segm, dict):
        area = float(mask_util.area(segm))
    elif segm is not None:
        raise TypeError(f"Unknown segmentation type {type(segm).__name__}")
    else:
        area = bbox[2] * bbox[3]
    return bbox, area


def _coco_annotation(anno: dict, image_id: Any, ann_id: int, reverse_id: dict | None) -> dict:
    bbox, area = _coco_box_and_area(anno)
    category_id = anno["category_id"]
    if reverse_id is not None:
        category_id = reverse_id[category_id]
    out = {
        "id": ann_id,
        "image_id": image_id,
        "bbox": [round(x, 3) for x in bbox],
        "area": float(area),
        "iscrowd": int(anno.get("iscrowd", 0)),
        "category_id": int(category_id),
    }
    if "keypoints" in anno:
        # Undo load_coco_json's +0.5: COCO files hold integer pixel indices.
        kps = [v - 0.5 if i % 3 != 2 else v for i, v in enumerate(anno["keypoints"])]
        out["keypoints"] = kps
        out["num_keypoints"] = anno.get("num_keypoints", sum(v > 0 for v in kps[2::3]))
    if "segmentation" in anno:
        segm = copy.copy(anno["segmentation"])
        if isinstance(segm, dict) and isinstance(segm["counts"], bytes):
            segm["counts"] = segm["counts"].decode("ascii")  # json cannot hold bytes
        out["segmentation"] = segm
    return out


def convert_to_coco_dict(dataset_name: str) -> dict:
    """Build a COCO-format dict from a registered dataset (e.g. one registered without a json).

    Contiguous category ids are mapped back through ``thing_dataset_id_to_contiguous_id`` when
    the metadata has it. Annotation ids start at 1 (pycocotools treats id 0 as falsy). Boxes
    become XYWH (rotated ones stay XYWHA); the area is the polygon or RLE area when there is a
    ``segmentation``, else the box area; segmentations and keypoints are copied.

    Args:
        dataset_name (str): a name registered in ``DatasetCatalog`` whose metadata has
            ``thing_classes``.

    Returns:
        dict: with ``info``, ``images``, ``annotations``, ``categories`` and ``licenses``.
    """
    dataset_dicts = DatasetCatalog.get(dataset_name)
    metadata = MetadataCatalog.get(dataset_name)
    id_map = metadata.get("thing_dataset_id_to_contiguous_id")
    reverse_id = {v: k for k, v in id_map.items()} if id_map is not None else None
    categories = [
        {"id": reverse_id[i] if reverse_id is not None else i, "name": name}
        for i, name in enumerate(metadata.thing_classes)
    ]
    images, annotations = [], []
    for index, d in enumerate(dataset_dicts):
        image_id = d.get("image_id", index)
        images.append(
            {
                "id": image_id,
                "width": int(d["width"]),
                "height": int(d["height"]),
                "file_name": str(d["file_name"]),
            }
        )
        for anno in d.get("annotations", []):
            annotations.append(_coco_annotation(anno, image_id, len(annotations) + 1, reverse_id))
    info = {
        "date_created": str(datetime.datetime.now()),
        "description": f"COCO json generated by d2lite from dataset '{dataset_name}'.",
    }
    logger.info(f"Converted '{dataset_name}': {len(images)} images, {len(annotations)} annotations")
    return {
        "info": info,
        "images": images,
        "annotations": annotations,
        "categories": categories,
        "licenses": None,
    }


def convert_to_coco_json(dataset_name: str, output_file: str, allow_cached: bool = True) -> None:
    """Write ``convert_to_coco_dict(dataset_name)`` to ``output_file``.

    Args:
        dataset_name (str): the registered dataset.
        output_file (str): where to write the json; parent directories are created.
        allow_cached (bool): reuse ``output_file`` if it already exists. Defaults to True.
    """
    if os.path.exists(output_file) and allow_cached:
        logger.warning(f"Using previously cached COCO format annotations at '{output_file}'.")
        return
    coco_dict = convert_to_coco_dict(dataset_name)
    # Write-then-rename so a crash (or a second process) never sees a half-written file.
    with atomic_output(output_file) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(coco_dict, f)


load_sem_seg = unsupported_function("load_sem_seg", "semantic segmentation datasets", __name__)
