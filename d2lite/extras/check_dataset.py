"""Check a detection dataset before training on it; ``d2lite check`` is its command line.

``check_coco_json(json_file, image_root)`` validates a COCO instances file with the loader's own
rules (:mod:`d2lite.data.datasets.coco_rules`: schema and field types, duplicate and dangling ids,
boxes), and beyond them the category id scheme, the images on disk and their sizes, and paths
leaving the image root, and ``check_dataset_dicts(dicts, thing_classes)`` does the same
checks that make sense for Detectron2 dataset dicts (e.g. a registered dataset). Both return a
``CheckReport``: errors (the dataset will break or silently mislead training), warnings (worth a
look), and statistics (class histogram, COCO small/medium/large box counts and size quantiles).

Images are judged by the loader's own functions (``read_image`` then ``check_image_size``, as
``DatasetMapper`` calls them), so an image passes here exactly when training can read it: every
pixel decoded (a truncated file fails) and its size taken after the EXIF orientation.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image
from tabulate import simple_separated_format, tabulate

from d2lite.data.datasets import coco_rules
from d2lite.data.image_io import (
    SizeMismatchError,
    check_image_size,
    find_paths_outside_root,
    high_bit_depth_note,
    read_image,
)
from d2lite.structures import BoxMode

__all__ = ["CheckReport", "check_coco_json", "check_coco_dict", "check_dataset_dicts"]

# COCO's size buckets, in pixels of area.
_SMALL, _LARGE = 32**2, 96**2
# Columns one space apart, so that "  9 Clothing" reads as one label.
_ONE_SPACE = simple_separated_format(" ")


@dataclass
class CheckReport:
    """What a check found.

    Attributes:
        errors (dict[str, list[str]]): kind of problem -> one message per offending id.
        warnings (dict[str, list[str]]): same, for suspicious but usable data.
        info (list[str]): facts worth printing (counts, the category id scheme).
        class_counts (dict[str, int]): "id name" -> number of boxes.
        box_sides (np.ndarray[M]): sqrt(area) of every valid box, in pixels.
    """

    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    info: list[str] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    box_sides: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not any(self.errors.values())

    def error(self, kind: str, message: str) -> None:
        self.errors[kind].append(message)

    def add(self, problems: list[coco_rules.Problem]) -> None:
        """Files each of the loader's rule problems as an error of its kind."""
        for p in problems:
            self.error(p.kind, p.entry)

    def warn(self, kind: str, message: str) -> None:
        self.warnings[kind].append(message)

    def format(self, max_per_kind: int = 20) -> str:
        """Human-readable report; each kind lists at most ``max_per_kind`` ids, then a count."""
        lines = list(self.info)
        for title, issues in (("ERRORS", self.errors), ("Warnings", self.warnings)):
            for kind, messages in issues.items():
                if not messages:
                    continue
                lines.append(f"{title} - {kind} ({len(messages)}):")
                lines += [f"    {m}" for m in messages[:max_per_kind]]
                if len(messages) > max_per_kind:
                    lines.append(f"    ... and {len(messages) - max_per_kind} more")
        lines += _format_stats(self.class_counts, self.box_sides)
        n_err = sum(len(m) for m in self.errors.values())
        n_warn = sum(len(m) for m in self.warnings.values())
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"Result: {verdict} ({n_err} errors, {n_warn} warnings)")
        return "\n".join(lines)


def _format_stats(class_counts: dict[str, int], sides: np.ndarray) -> list[str]:
    lines = ["Class histogram (boxes per category):"]
    top = max(class_counts.values(), default=0) or 1  # no boxes: empty bars
    # The keys are "id name": the id gets a right-aligned column of its own.
    rows = [
        (*key.strip().partition(" ")[::2], n, "#" * round(30 * n / top))
        for key, n in class_counts.items()
    ]
    if rows:
        align = ("right", "left", "right", "left")
        table = tabulate(rows, tablefmt=_ONE_SPACE, disable_numparse=True, colalign=align)
        lines += ["    " + line for line in table.splitlines()]
    if len(sides) == 0:
        return lines + ["Box sizes: no boxes"]
    areas = sides**2
    small, large = int((areas < _SMALL).sum()), int((areas >= _LARGE).sum())
    medium = len(areas) - small - large
    lines.append(f"Box sizes (COCO): small {small}, medium {medium}, large {large}")
    qs = [0, 5, 25, 50, 75, 95, 100]
    values = np.percentile(sides, qs)
    lines.append(
        "    sqrt(area) px quantiles: " + ", ".join(f"p{q}={v:.1f}" for q, v in zip(qs, values))
    )
    return lines


def _describe_category_ids(ids: list[int]) -> str:
    ids = sorted(ids)
    if ids == list(range(len(ids))):
        return "0-based contiguous"
    if ids == list(range(1, len(ids) + 1)):
        return "1-based contiguous (Detectron2 maps them to 0..K-1)"
    return f"sparse, {ids[0]}..{ids[-1]} (Detectron2 maps them to 0..K-1)"


def check_coco_dict(data: Any, image_root: str | None, *, check_images: bool = True) -> CheckReport:
    """Checks a loaded COCO instances dict.

    Args:
        data (Any): the parsed JSON.
        image_root (str | None): directory ``file_name`` is relative to; None skips image checks.
        check_images (bool): open every image (size only) to check it exists and matches the
            JSON. Defaults to True.

    Returns:
        CheckReport: the findings.
    """
    report = CheckReport()
    report.add(coco_rules.top_level_problems(data))
    if not isinstance(data, dict):
        return report
    sections = {}
    for section in ("images", "annotations", "categories"):
        sections[section], problems = coco_rules.entry_problems(section, data.get(section, []))
        report.add(problems)
        report.add(coco_rules.duplicate_problems(section, [e.get("id") for e in sections[section]]))
    images, anns, cats = sections["images"], sections["annotations"], sections["categories"]
    for name, n in Counter(c["name"] for c in cats).items():
        if n > 1:
            report.warn("duplicate_category_name", f"category name {name!r} used {n} times")
    for fname, n in Counter(im["file_name"] for im in images).items():
        if n > 1:
            report.warn("duplicate_file_name", f"{fname} listed {n} times")
    if cats:
        report.info.append(f"Category ids: {_describe_category_ids([c['id'] for c in cats])}")
    names = {c["id"]: c["name"] for c in cats}
    rows = [(im["id"], im["file_name"], im["width"], im["height"]) for im in images]
    boxes = [
        (f"annotation {a.get('id', f'#{i}')}", a["image_id"], a["category_id"], a["bbox"])
        for i, a in enumerate(anns)
    ]
    root = image_root if check_images else None
    _check_content(report, rows, boxes, names, root)
    if image_root is not None:
        named = [(im_id, name, os.path.join(image_root, name)) for im_id, name, *_ in rows]
        _check_paths_inside(report, named, image_root)
    return report


def check_coco_json(
    json_file: str, image_root: str | None, *, check_images: bool = True
) -> CheckReport:
    """Reads ``json_file`` and runs ``check_coco_dict`` on it; unreadable JSON is an error."""
    try:
        with open(json_file) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        report = CheckReport()
        report.error("json", f"cannot read {json_file}: {e}")
        return report
    report = check_coco_dict(data, image_root, check_images=check_images)
    report.info.insert(0, f"Dataset: {json_file} (images under {image_root})")
    return report


def check_dataset_dicts(
    dicts: list[dict],
    thing_classes: Sequence[str] | None = None,
    *,
    check_images: bool = True,
    image_root: str | None = None,
) -> CheckReport:
    """Checks Detectron2 dataset dicts (``file_name`` as given, boxes in their ``bbox_mode``).

    Args:
        dicts (list[dict]): e.g. ``DatasetCatalog.get(name)``.
        thing_classes (Sequence[str] | None): class names; contiguous ids 0..K-1 are then
            required. Defaults to None (any id accepted).
        check_images (bool): see ``check_coco_dict``. Defaults to True.
        image_root (str | None): the directory the images should stay in (e.g. the metadata's
            ``image_root``); files resolving outside it are warned about. Defaults to None.

    Returns:
        CheckReport: the findings.
    """
    report = CheckReport()
    rows, boxes = [], []
    for i, d in enumerate(dicts):
        image_id = d.get("image_id", i)
        rows.append((image_id, d.get("file_name", ""), d.get("width"), d.get("height")))
        for j, a in enumerate(d.get("annotations", [])):
            mode = a.get("bbox_mode", BoxMode.XYWH_ABS)
            xywh = BoxMode.convert(list(a["bbox"]), mode, BoxMode.XYWH_ABS)
            boxes.append((f"image {image_id} annotation #{j}", image_id, a["category_id"], xywh))
    report.add(coco_rules.duplicate_problems("images", [r[0] for r in rows]))
    if thing_classes is not None:
        names = dict(enumerate(thing_classes))
    else:
        names = {c: str(c) for c in sorted({b[2] for b in boxes})}
    _check_content(report, rows, boxes, names, "" if check_images else None)
    if image_root is not None:
        _check_paths_inside(report, [(r[0], r[1], r[1]) for r in rows], image_root)
    return report


def _check_paths_inside(report: CheckReport, named: list[tuple], image_root: str) -> None:
    """Warns about each image whose path resolves outside ``image_root``, as the loader does.

    Args:
        named: (image_id, file name as written in the dataset, path to read) per image.
    """
    for i in find_paths_outside_root([path for *_, path in named], image_root):
        image_id, name, path = named[i]
        report.warn(
            "image_outside_root",
            f"image {image_id}: {name} resolves to {os.path.realpath(path)}, outside {image_root}",
        )


def _check_image_file(report: CheckReport, row: tuple, image_root: str) -> None:
    """Reads the image as the loader does and reports what would stop or mislead training."""
    image_id, file_name, width, height = row
    path = os.path.join(image_root, file_name)
    if not os.path.isfile(path):
        report.error("missing_image", f"image {image_id}: {path} does not exist")
        return
    try:
        image = read_image(path)
    except OSError as e:  # read_image's message names the path and says why
        report.error("unreadable_image", f"image {image_id}: {e}")
        return
    with Image.open(path) as stored:  # the header only: size before EXIF orientation, mode
        stored_size, mode = stored.size, stored.mode
    if high_bit_depth_note(mode):
        report.warn("high_bit_depth", f"image {image_id}: {path}: mode {high_bit_depth_note(mode)}")
    claimed = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
    try:
        check_image_size({"file_name": path, **claimed}, image)
    except SizeMismatchError:
        loaded = (image.shape[1], image.shape[0])
        # A phone photo's file is stored sideways; say so, or "is 30x40" looks like a lie.
        exif = ""
        if stored_size != loaded:
            exif = f" after its EXIF orientation (stored {stored_size[0]}x{stored_size[1]})"
        report.error(
            "image_size_mismatch",
            f"image {image_id}: {path} is {loaded[0]}x{loaded[1]}{exif}, "
            f"annotated {width}x{height}",
        )


def _check_content(
    report: CheckReport,
    rows: list[tuple],
    boxes: list[tuple],
    names: dict[int, str],
    image_root: str | None,
) -> None:
    """Checks boxes against their images and categories, the files, and gathers statistics.

    Args:
        rows: (image_id, file_name, width, height) per image.
        boxes: (label for messages, image_id, category_id, [x, y, w, h]) per box.
    """
    sizes = {r[0]: (r[2], r[3]) for r in rows}
    counts: Counter = Counter()
    sides, images_with_boxes = [], set()
    for label, image_id, cat, (x, y, w, h) in boxes:
        problems = coco_rules.box_problems(label, image_id, cat, (x, y, w, h), sizes, names)
        report.add(problems)
        if any(p.kind in ("non_finite_box", "non_positive_box") for p in problems):
            continue
        width, height = sizes.get(image_id, (None, None))
        if width is not None and (x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1):
            report.warn(
                "box_outside_image",
                f"{label}: bbox {[x, y, w, h]} leaves the {width}x{height} image",
            )
        counts[cat] += 1
        sides.append(float(np.sqrt(w * h)))
        images_with_boxes.add(image_id)
    if boxes:
        for image_id, *_ in rows:
            if image_id not in images_with_boxes:
                report.warn("image_without_annotations", f"image {image_id}")
    report.info.append(f"Images: {len(rows)}, boxes: {len(boxes)}, categories: {len(names)}")
    if not boxes:
        report.info.append("No annotations at all (a test split?)")
    if image_root is not None:
        for row in rows:
            _check_image_file(report, row, image_root)
    report.class_counts = {f"{c:>3} {names.get(c, '?')}": counts[c] for c in sorted(names)}
    for c in sorted(set(counts) - set(names), key=str):
        report.class_counts[f"{c!s:>3} <unknown>"] = counts[c]
    report.box_sides = np.asarray(sides)
