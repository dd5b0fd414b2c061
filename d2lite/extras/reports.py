"""The evaluation report of a run: what ``d2lite train``/``eval``, ``tools/`` and the demo write
next to ``COCOEvaluator``'s metrics.

``build_coco_evaluator`` returns a :class:`COCOEvaluatorWithReports`, which, after computing the
same metrics as ``COCOEvaluator``, writes into its ``output_dir``:

- ``per_class_results.md``: class, AP, AP50, number of GT boxes and of detections;
- ``pr_curves.png``: per-class precision-recall at IoU 0.5;
- ``confusion_matrix.png`` / ``.csv``: see :mod:`d2lite.extras.plots`.

Each is written atomically, at a path checked when the evaluator is built.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict, defaultdict
from typing import Any

import torch

from d2lite.config import CfgNode
from d2lite.data.catalog import MetadataCatalog
from d2lite.evaluation.coco_evaluation import COCOEvaluator
from d2lite.extras import plots
from d2lite.structures import BoxMode
from d2lite.utils.file_io import atomic_output, safe_output_path

__all__ = ["COCOEvaluatorWithReports", "build_coco_evaluator", "per_class_markdown"]

logger = logging.getLogger(__name__)

# The IoU of the PR curves and of the confusion matrix's matches.
_PLOT_IOU = 0.5

_REPORT_FILES = (
    "per_class_results.md",
    "pr_curves.png",
    "confusion_matrix.csv",
    "confusion_matrix.png",
)
_HEADER = ["category", "AP", "AP50", "#GT", "#dets"]


def per_class_markdown(rows: list[dict]) -> str:
    """Formats rows from ``coco_metrics.per_class_rows`` as a markdown table."""
    # Unpadded cells: the file is read rendered, and a grep for "| bird | no GT |" finds it.
    fmt = lambda v: "no GT" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "|".join([":---"] + ["---:"] * 4) + "|"]
    for r in rows:
        cells = [r["name"], fmt(r["AP"]), fmt(r["AP50"]), str(r["num_gt"]), str(r["num_dets"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class COCOEvaluatorWithReports(COCOEvaluator):
    """``COCOEvaluator`` that also writes the report files into ``output_dir``.

    Args:
        confusion_score_threshold (float): detections scoring below it are left out of the
            confusion matrix. Defaults to 0.5.
        *args, **kwargs: as ``COCOEvaluator``.
    """

    def __init__(self, *args: Any, confusion_score_threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._confusion_score_threshold = confusion_score_threshold
        out = self._output_dir
        self._report_paths = {n: safe_output_path(out, n) for n in _REPORT_FILES} if out else {}

    def evaluate(self, img_ids: list[int] | None = None) -> OrderedDict | dict:
        """``COCOEvaluator.evaluate``, then the report files (on the main process)."""
        results = super().evaluate(img_ids)
        if self._report_paths and self.last_box_eval is not None:
            self._write_reports(**self.last_box_eval)
        return results

    def _write_reports(
        self, coco_eval: Any, coco_results: list[dict], rows: list[dict], class_names: list[str]
    ) -> None:
        paths = self._report_paths
        with atomic_output(paths["per_class_results.md"]) as tmp, open(tmp, "w") as f:
            f.write(per_class_markdown(rows))
        no_gt = [r["name"] for r in rows if r["AP"] is None]
        if no_gt:
            logger.info(f"Classes without ground truth have no curve in pr_curves.png: {no_gt}")
        iou50 = int(abs(coco_eval.params.iouThrs - _PLOT_IOU).argmin())
        precision = coco_eval.eval["precision"][iou50, :, :, 0, -1]
        plots.plot_pr_curves(
            precision, coco_eval.params.recThrs, class_names, paths["pr_curves.png"],
            iou_threshold=float(coco_eval.params.iouThrs[iou50]),
        )  # fmt: skip
        gt, dt = _boxes_per_image(
            self._coco_api.dataset["annotations"],
            coco_results,
            list(coco_eval.params.catIds),
            list(coco_eval.params.imgIds),
        )
        score = self._confusion_score_threshold
        thresholds = {"iou_threshold": _PLOT_IOU, "score_threshold": score}
        names = class_names
        matrix = plots.confusion_matrix(gt, dt, len(names), **thresholds)
        plots.save_confusion_matrix_csv(matrix, names, paths["confusion_matrix.csv"])
        plots.plot_confusion_matrix(matrix, names, paths["confusion_matrix.png"], **thresholds)
        logger.info(
            "Wrote per_class_results.md, pr_curves.png, confusion_matrix.png/csv to "
            f"{self._output_dir}"
        )


def _boxes_per_image(
    annotations: list[dict], coco_results: list[dict], cat_ids: list[int], img_ids: list[int]
) -> tuple[list[tuple], list[tuple]]:
    """Groups non-crowd GT and detections by image, in the form ``plots.confusion_matrix`` takes.

    Boxes become XYXY_ABS tensors and category ids become indices into ``cat_ids``.
    """
    cat_index = {c: k for k, c in enumerate(cat_ids)}
    gt_by_img: dict[Any, list[dict]] = defaultdict(list)
    for ann in annotations:
        if not ann.get("iscrowd", 0):
            gt_by_img[ann["image_id"]].append(ann)
    dt_by_img: dict[Any, list[dict]] = defaultdict(list)
    for result in coco_results:
        dt_by_img[result["image_id"]].append(result)

    def boxes(items: list[dict]) -> torch.Tensor:
        xywh = torch.tensor([x["bbox"] for x in items], dtype=torch.float32).reshape(-1, 4)
        return BoxMode.convert(xywh, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)

    def classes(items: list[dict]) -> torch.Tensor:
        return torch.tensor([cat_index[x["category_id"]] for x in items], dtype=torch.long)

    def scores(items: list[dict]) -> torch.Tensor:
        return torch.tensor([x["score"] for x in items], dtype=torch.float32)

    gt = [(boxes(gt_by_img[i]), classes(gt_by_img[i])) for i in img_ids]
    dt = [(boxes(dt_by_img[i]), scores(dt_by_img[i]), classes(dt_by_img[i])) for i in img_ids]
    return gt, dt


def build_coco_evaluator(
    cfg: CfgNode, dataset_name: str, output_folder: str | None = None
) -> COCOEvaluatorWithReports:
    """The evaluator d2lite's tools use for a dataset (Detectron2's own trainer has none).

    Args:
        cfg (CfgNode): the config; ``OUTPUT_DIR/inference`` is the default output folder.
        dataset_name (str): a registered dataset whose metadata ``evaluator_type`` is "coco"
            or unset.
        output_folder (str | None): where results go. Defaults to None (``OUTPUT_DIR/inference``).

    Raises:
        NotImplementedError: for another ``evaluator_type``, naming it and the dataset.
    """
    # USER: return your own DatasetEvaluator here for other data.
    output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type in (None, "coco"):
        return COCOEvaluatorWithReports(dataset_name, output_dir=output_folder)
    raise NotImplementedError(
        f"Dataset '{dataset_name}' has evaluator_type={evaluator_type!r}, for which d2lite has "
        "no evaluator. Override build_evaluator (tools/train_net.py) or get_evaluator "
        "(tools/plain_train_net.py), or pass evaluators to test()."
    )
