"""Box AP with pycocotools' COCOeval, made safe for datasets that number things from 0.

The id-0 trap: COCOeval records matches in its ``gtm``/``dtm`` arrays by storing the id of
the matched annotation, and 0 there means "unmatched". A detection matched to a ground-truth
annotation whose id is 0 is therefore never counted as a true positive, and AP silently drops.
:func:`prepare_coco_gt` renumbers the ground-truth annotation ids 1..N (and fills a missing
``area`` / ``iscrowd``) before evaluation. Annotation ids never appear in the results or the
metrics, so nothing has to be mapped back; image and category ids are kept as they are because
COCOeval handles 0 correctly for both.

Shapes: T IoU thresholds, R recall thresholds, K categories, A area ranges, M max-dets settings;
COCOeval's ``eval["precision"]`` is ``[T, R, K, A, M]`` with -1 where there is no ground truth.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import math
from collections import Counter
from typing import Any, Iterator

import numpy as np
from tabulate import tabulate

__all__ = [
    "prepare_coco_gt",
    "build_coco_api",
    "evaluate_boxes",
    "summarize_boxes",
    "per_class_rows",
    "format_summary_table",
    "format_per_class_table",
]

logger = logging.getLogger(__name__)

BOX_METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
# (IoU threshold or None for the 0.50:0.95 mean, area-range index) of each of BOX_METRICS.
_METRIC_SLICES = [(None, 0), (0.5, 0), (0.75, 0), (None, 1), (None, 2), (None, 3)]


@contextlib.contextmanager
def quiet_stdout(what: str) -> Iterator[None]:
    """Captures what pycocotools prints and logs it at INFO under ``what``."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    text = buffer.getvalue().strip()
    if text:
        logger.info(f"{what}:\n{text}")


@functools.lru_cache(maxsize=None)
def _coco_classes(use_fast_impl: bool) -> tuple[type, type]:
    """Returns the (COCO, COCOeval) classes: faster_coco_eval's when asked and installed."""
    if use_fast_impl:
        try:
            from faster_coco_eval import COCO, COCOeval_faster

            return COCO, COCOeval_faster
        except ImportError:
            logger.info("faster_coco_eval is not installed; using pycocotools' COCOeval.")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return COCO, COCOeval


def prepare_coco_gt(dataset: dict, json_file: str = "<dict>") -> dict:
    """Returns a copy of a COCO ground-truth dict that COCOeval scores correctly.

    Annotation ids become 1..N (see the module docstring), ``area`` defaults to the box area and
    ``iscrowd`` to 0.

    Args:
        dataset (dict): COCO json content with "images", "annotations" and "categories".
        json_file (str): where it came from, for error messages. Defaults to "<dict>".

    Raises:
        ValueError: when a required key or an annotation's bbox is missing.
    """
    for key in ("images", "annotations", "categories"):
        if key not in dataset:
            raise ValueError(f"COCO json {json_file} has no {key!r} key")
    gt = {k: v for k, v in dataset.items() if k != "annotations"}
    annotations = []
    for new_id, ann in enumerate(dataset["annotations"], start=1):
        if "bbox" not in ann or len(ann["bbox"]) != 4:
            raise ValueError(f"Annotation {ann.get('id')} in {json_file} has no valid 'bbox'")
        defaults = {"iscrowd": 0, "area": float(ann["bbox"][2] * ann["bbox"][3])}
        annotations.append({**defaults, **ann, "id": new_id})
    gt["annotations"] = annotations
    return gt


def build_coco_api(dataset: dict, use_fast_impl: bool = True) -> Any:
    """Builds a COCO api object from an in-memory dict, without printing."""
    coco_cls, _ = _coco_classes(use_fast_impl)
    with quiet_stdout("COCO api"):
        coco = coco_cls()
        coco.dataset = dataset
        coco.createIndex()
    return coco


def _load_results(coco_gt: Any, coco_results: list[dict], use_fast_impl: bool) -> Any:
    unknown = {r["image_id"] for r in coco_results} - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(
            f"Predictions refer to image ids {sorted(unknown)[:10]} that are not in the "
            f"ground-truth json; do the dataset dicts' image_id match the json's image ids?"
        )
    if not coco_results:
        # loadRes cannot take an empty list; an empty result set scores 0 AP where GT exists.
        empty = {k: gt_v for k, gt_v in coco_gt.dataset.items() if k in ("images", "categories")}
        return build_coco_api({**empty, "annotations": []}, use_fast_impl)
    with quiet_stdout("COCO api"):
        return coco_gt.loadRes(copy.deepcopy(coco_results))


def evaluate_boxes(
    coco_gt: Any,
    coco_results: list[dict],
    *,
    max_dets_per_image: list[int] | None = None,
    img_ids: list[int] | None = None,
    use_fast_impl: bool = True,
) -> Any:
    """Runs COCOeval's evaluate + accumulate for boxes.

    Args:
        coco_gt: a COCO api object built from :func:`prepare_coco_gt` output.
        coco_results (list[dict]): ``{"image_id", "category_id", "bbox" (XYWH_ABS), "score"}``.
        max_dets_per_image (list[int] | None): COCOeval's maxDets. Defaults to [1, 10, 100].
        img_ids (list[int] | None): evaluate only these images. Defaults to all GT images.
        use_fast_impl (bool): use faster_coco_eval when installed. Defaults to True.

    Returns:
        COCOeval: evaluated, with ``eval["precision"]`` of shape [T, R, K, A, M].
    """
    _, cocoeval_cls = _coco_classes(use_fast_impl)
    coco_dt = _load_results(coco_gt, coco_results, use_fast_impl)
    with quiet_stdout("COCOeval"):
        coco_eval = cocoeval_cls(coco_gt, coco_dt, "bbox")
        coco_eval.params.maxDets = list(max_dets_per_image or [1, 10, 100])
        if img_ids is not None:
            coco_eval.params.imgIds = list(img_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    return coco_eval


def _iou_index(coco_eval: Any, iou: float) -> int:
    return int(np.argmin(np.abs(np.asarray(coco_eval.params.iouThrs) - iou)))


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid) * 100) if valid.size else float("nan")


def summarize_boxes(coco_eval: Any) -> dict[str, float]:
    """Returns AP, AP50, AP75, APs, APm, APl in percent, at the largest maxDets.

    These equal COCOeval.summarize()'s first six stats: each is the mean over the precision
    entries that exist, so classes (or area ranges) without ground truth are left out of the
    mean. A metric with no ground truth at all is NaN, as in Detectron2.
    """
    precision = coco_eval.eval["precision"]
    results = {}
    for name, (iou, area) in zip(BOX_METRICS, _METRIC_SLICES):
        p = precision[:, :, :, area, -1]
        if iou is not None:
            p = p[_iou_index(coco_eval, iou)]
        results[name] = _mean_valid(p)
    return results


def per_class_rows(
    coco_eval: Any, coco_gt: Any, coco_results: list[dict], class_names: list[str]
) -> list[dict]:
    """One row per category of ``coco_eval.params.catIds``.

    Args:
        class_names (list[str]): names in the order of ``coco_eval.params.catIds``.

    Returns:
        list[dict]: ``{"name", "AP", "AP50", "num_gt", "num_dets"}``; AP and AP50 are None for
        a class without ground truth.
    """
    precision = coco_eval.eval["precision"]
    iou50 = _iou_index(coco_eval, 0.5)
    img_ids = set(coco_eval.params.imgIds)
    gt_counts = Counter(
        a["category_id"]
        for a in coco_gt.dataset["annotations"]
        if not a.get("iscrowd", 0) and a["image_id"] in img_ids
    )
    det_counts = Counter(r["category_id"] for r in coco_results if r["image_id"] in img_ids)
    rows = []
    for k, (cat_id, name) in enumerate(zip(coco_eval.params.catIds, class_names)):
        ap = _mean_valid(precision[:, :, k, 0, -1])
        ap50 = _mean_valid(precision[iou50, :, k, 0, -1])
        rows.append(
            {
                "name": name,
                "AP": None if math.isnan(ap) else ap,
                "AP50": None if math.isnan(ap50) else ap50,
                "num_gt": gt_counts[cat_id],
                "num_dets": det_counts[cat_id],
            }
        )
    return rows


def format_summary_table(results: dict[str, float]) -> str:
    """Formats ``{metric: value}`` as a two-row fixed-width table (header, values)."""
    # Not tabulate: its centring leans right where str.center leans left, and logs (and a
    # test) have this exact form since the first release.
    values = [f"{v:.3f}" for v in results.values()]
    widths = [max(len(k), len(v)) for k, v in zip(results, values)]
    header = " | ".join(k.center(w) for k, w in zip(results, widths))
    row = " | ".join(v.center(w) for v, w in zip(values, widths))
    return f"| {header} |\n| {row} |"


def format_per_class_table(rows: list[dict]) -> str:
    """Formats rows from :func:`per_class_rows` as a fixed-width text table for the log."""
    fmt = lambda v: "no GT" if v is None else f"{v:.3f}"  # noqa: E731
    cells = [[r["name"], fmt(r["AP"]), fmt(r["AP50"]), r["num_gt"], r["num_dets"]] for r in rows]
    return tabulate(
        cells, headers=["category", "AP", "AP50", "#GT", "#dets"], disable_numparse=True,
        colalign=("left", "right", "right", "right", "right"),
    )  # fmt: skip
