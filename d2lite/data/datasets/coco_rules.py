"""The rules a COCO instances file follows, for both the loader and the dataset checker.

``load_coco_json`` raises at the first broken rule, naming the file and the id;
``d2lite.extras.check_dataset`` runs the same functions over a whole file and lists every
problem under its kind. Each rule gives a :class:`Problem` with two texts: a sentence for the
loader's exception and a shorter line for the checker's list, both naming the offending id.

The verdict is the same in both: a problem of a kind in :data:`DROPPED_KINDS` costs one
annotation (the loader drops it, with one warning for all; the checker reports it, since it will
not train), any other problem makes the file unusable (the loader raises, the checker fails).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Problem",
    "DROPPED_KINDS",
    "top_level_problems",
    "entry_problems",
    "duplicate_problems",
    "box_problems",
]

# Boxes without area: Detectron2 filters such instances out later; the loader drops them now.
DROPPED_KINDS = frozenset({"non_positive_box"})

# The top-level keys without which nothing can be loaded; a test split may lack "annotations".
_REQUIRED_KEYS = ("images", "categories")


@dataclass(frozen=True)
class Problem:
    """One broken rule.

    Attributes:
        kind (str): what is wrong, e.g. "dangling_image_id" (the checker's report key).
        message (str): a sentence naming the entry, for the loader's ValueError.
        entry (str): the same, shorter, for the checker's list under ``kind``.
    """

    kind: str
    message: str
    entry: str


def _is_id(v: Any) -> bool:
    # Any JSON scalar that can key a dict; COCO uses integers, some exporters strings.
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    # NaN and Infinity count as numbers here: box_problems names them by annotation id.
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_box(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(map(_is_number, v))


def _is_crowd_flag(v: Any) -> bool:
    return v in (0, 1) and not isinstance(v, float)


# Per section: the singular used in messages, then the required fields and their type checks.
_SECTIONS = {
    "images": (
        "image",
        {"id": _is_id, "file_name": _is_str, "width": _is_number, "height": _is_number},
    ),
    "annotations": (
        "annotation",
        {"id": _is_id, "image_id": _is_id, "category_id": _is_id, "bbox": _is_box},
    ),
    "categories": ("category", {"id": _is_id, "name": _is_str}),
}
_OPTIONAL_FIELDS = {"annotations": {"iscrowd": _is_crowd_flag}}
_FIELD_TEXT = {"bbox": "a 4-number 'bbox'", "iscrowd": "an 'iscrowd' of 0 or 1"}


def top_level_problems(data: Any) -> list[Problem]:
    """Whether ``data`` is an object with the COCO sections nothing loads without."""
    if not isinstance(data, dict):
        got = type(data).__name__
        message = f"expected a JSON object, got {got}"
        return [Problem("schema", message, f"top level must be an object, got {got}")]
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if not missing:
        return []
    message = f"missing the top-level key '{missing[0]}' of COCO format"
    return [Problem("schema", message, f"missing top-level keys {missing}; found {sorted(data)}")]


def entry_problems(section: str, entries: Any) -> tuple[list[dict], list[Problem]]:
    """Checks that each entry of a COCO section has its required fields, with the right types.

    Annotations may all go without ``id`` (d2lite then numbers nothing by them), not some.

    Args:
        section (str): "images", "annotations" or "categories".
        entries (Any): ``data[section]``.

    Returns:
        tuple[list[dict], list[Problem]]: the valid entries, and a problem for each other one.
    """
    singular, fields = _SECTIONS[section]
    if not isinstance(entries, list):
        got = type(entries).__name__
        text = f'"{section}" must be a list, got {got}'
        return [], [Problem("schema", text, text)]
    optional = dict(_OPTIONAL_FIELDS.get(section, {}))
    if section == "annotations" and not any(isinstance(a, dict) and "id" in a for a in entries):
        fields = {k: v for k, v in fields.items() if k != "id"}
    valid, problems = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            text = f"{section}[{i}] is not an object"
            problems.append(Problem(f"{section}_schema", text, text))
            continue
        bad = [k for k, ok in fields.items() if k not in entry or not ok(entry[k])]
        bad += [k for k, ok in optional.items() if k in entry and not ok(entry[k])]
        if not bad:
            valid.append(entry)
            continue
        got = {k: entry.get(k, "<missing>") for k in bad}
        entry_text = f"{section}[{i}] (id {entry.get('id')}): bad {got}"
        if "id" in bad and "id" in fields:
            message = f"an entry of '{section}' has no 'id': {entry}"
        else:
            k = bad[0]
            need = _FIELD_TEXT.get(k, f"'{k}'")
            has = f"needs {need}, got {entry[k]!r}" if k in entry else f"has no '{k}'"
            message = f"{singular} id {entry.get('id')} {has}"
        problems.append(Problem(f"{section}_schema", message, entry_text))
    return valid, problems


def duplicate_problems(section: str, ids: Sequence[Any]) -> list[Problem]:
    """A problem for each id that ``ids`` (of "images", "annotations", "categories") repeats."""
    singular = _SECTIONS[section][0]
    return [
        Problem(
            f"duplicate_{singular}_id",
            f"duplicate {section} id {value}",
            f"{singular} id {value} appears {n} times",
        )
        for value, n in Counter(ids).items()
        if n > 1
    ]


def box_problems(
    label: str,
    image_id: Any,
    category_id: Any,
    bbox: Sequence[float],
    image_ids: Collection,
    category_ids: Collection,
) -> list[Problem]:
    """What is wrong with one box: its image or category unknown, or its XYWH not usable.

    Args:
        label (str): names the box, e.g. "annotation 3".
        image_id, category_id (Any): what the box refers to.
        bbox (Sequence[float]): ``[x, y, w, h]``, four numbers (see :func:`entry_problems`).
        image_ids, category_ids (Collection): the known ids.

    Returns:
        list[Problem]: empty for a good box (checked first, in one pass, for speed).
    """
    x, y, w, h = bbox
    # A finite sum proves every value finite at a fraction of the cost of testing each; only an
    # overflowing sum needs the full test (COCO has 860k boxes).
    finite = math.isfinite(x + y + w + h) or all(math.isfinite(v) for v in bbox)
    if image_id in image_ids and category_id in category_ids and finite and w > 0 and h > 0:
        return []
    problems = []
    if image_id not in image_ids:
        message = f"{label} refers to image_id {image_id}, which is not in 'images'"
        entry = f"{label} -> image {image_id} not in images"
        problems.append(Problem("dangling_image_id", message, entry))
    if category_id not in category_ids:
        message = f"{label} has category_id {category_id}, which is not in 'categories'"
        entry = f"{label} -> category {category_id} not in categories"
        problems.append(Problem("unknown_category_id", message, entry))
    box = [x, y, w, h]
    entry = f"{label}: bbox [x, y, w, h] = {box}"
    if not finite:
        message = f"{label} has a non-finite 'bbox' {box} (NaN or Infinity)"
        problems.append(Problem("non_finite_box", message, entry))
    elif not (w > 0 and h > 0):
        message = f"{label} has a 'bbox' {box} with width or height <= 0"
        problems.append(Problem("non_positive_box", message, entry))
    return problems
