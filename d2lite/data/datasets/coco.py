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
from . import coco_rules

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
    _raise_first(coco_rules.top_level_problems(data), json_file)
    return data


def _raise_first(problems: list[coco_rules.Problem], json_file: str) -> None:
    if problems:
        raise ValueError(f"{json_file}: {problems[0].message}")


def _checked_section(data: dict, section: str, json_file: str) -> list[dict]:
    """The entries of ``data[section]``, which must all follow the rules, ids unique."""
    entries, problems = coco_rules.entry_problems(section, data.get(section, []))
    _raise_first(problems, json_file)
    if section != "annotations" or (entries and "id" in entries[0]):
        _raise_first(coco_rules.duplicate_problems(section, [e["id"] for e in entries]), json_file)
    return entries


def _group_annotations(
    anns: list[dict], image_ids: set, category_ids: set, json_file: str
) -> tuple[dict[Any, list[dict]], int]:
    """The annotations per image id, without those the rules drop; and how many were dropped."""
    per_image: dict[Any, list[dict]] = {}
    num_dropped = 0
    for a in anns:
        label = f"annotation id {a.get('id')}"
        problems = coco_rules.box_problems(
            label, a["image_id"], a["category_id"], a["bbox"], image_ids, category_ids
        )
        if problems:
            _raise_first([p for p in problems if p.kind not in coco_rules.DROPPED_KINDS], json_file)
            num_dropped += 1
            continue
        per_image.setdefault(a["image_id"], []).append(a)
    return per_image, num_dropped


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


def _image_record(img: dict, image_root: str, annotations: list[dict]) -> dict:
    return {
        "file_name": os.path.join(image_root, img["file_name"]),
        "height": img["height"],
        "width": img["width"],
        "image_id": img["id"],
        "annotations": annotations,
    }


def _annotation_record(
    anno: dict, ann_keys: list[str], id_map: dict | None, json_file: str
) -> dict | None:
    """The dataset-dict form of one COCO annotation, its category id mapped through ``id_map``
    (if any); None if its polygons are all invalid."""
    assert anno.get("ignore", 0) == 0, f'{json_file}: "ignore" in a COCO json is not supported'
    obj = {key: anno[key] for key in ann_keys if key in anno}
    if id_map is not None:
        obj["category_id"] = id_map[obj["category_id"]]
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
        ValueError: at the first broken rule of :mod:`d2lite.data.datasets.coco_rules`
            (malformed JSON, missing keys or fields, an annotation naming an unknown image or
            category, a bbox that is not 4 finite numbers, a duplicate id); the message names
            the file and the id.

    Image paths that resolve outside ``image_root`` are read, as in Detectron2, after one
    warning with their count.
    """
    start = time.perf_counter()
    data = _read_json(json_file)
    images = _checked_section(data, "images", json_file)
    cats = sorted(_checked_section(data, "categories", json_file), key=lambda c: c["id"])
    anns = _checked_section(data, "annotations", json_file)
    per_image, num_dropped = _group_annotations(
        anns, {img["id"] for img in images}, {c["id"] for c in cats}, json_file
    )
    # Metadata is set only once the file is known to be valid.
    id_map = None
    if dataset_name is not None:
        id_map = {c["id"]: i for i, c in enumerate(cats)}
        MetadataCatalog.get(dataset_name).set(
            thing_classes=[c["name"] for c in cats], thing_dataset_id_to_contiguous_id=id_map
        )

    ann_keys = ["iscrowd", "bbox", "category_id"] + (extra_annotation_keys or [])
    images = sorted(images, key=lambda i: i["id"])
    _warn_paths_outside_root(images, image_root, json_file)
    dataset_dicts, num_bad_segm = [], 0
    for img in images:
        annos = per_image.get(img["id"], [])
        objs = [_annotation_record(a, ann_keys, id_map, json_file) for a in annos]
        num_bad_segm += sum(obj is None for obj in objs)
        dataset_dicts.append(_image_record(img, image_root, [o for o in objs if o is not None]))

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
        loader = functools.partial(load_coco_json, json_file, image_root, name)
        DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata
    )


def _polygons_area(polygons: list) -> float:
    """Total area of flat ``[x0, y0, x1, y1, ...]`` polygons (shoelace formula)."""
    total = 0.0
    for poly in polygons:
        x, y = np.asarray(poly, dtype=np.float64).reshape(-1, 2).T
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
    category_id = anno["category_id"] if reverse_id is None else reverse_id[anno["category_id"]]
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
