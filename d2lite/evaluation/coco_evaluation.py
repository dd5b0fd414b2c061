"""COCO-style box AP for any dataset registered in the catalogs.

``COCOEvaluator`` turns each output's ``instances`` into COCO results, gathers them from every
process and scores them with COCOeval (see :mod:`d2lite.evaluation.coco_metrics` for how the
ground truth is renumbered so that annotation id 0 counts). Besides Detectron2's metrics it
logs a per-class table and, when ``output_dir`` is set, writes ``coco_instances_results.json``
(the detections, with the dataset's own category ids) atomically, at a path checked by
``safe_output_path`` when the evaluator is built, so a symlink leading outside ``output_dir``
is refused before inference runs. The pictures and tables of a run's report are
``d2lite.extras.reports``'s, which the ``d2lite`` commands use.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import tempfile
from collections import OrderedDict
from typing import Any

import torch
from iopath.common.file_io import g_pathmgr as PathManager

from d2lite.config import CfgNode
from d2lite.data.catalog import MetadataCatalog
from d2lite.evaluation import coco_metrics
from d2lite.evaluation.evaluator import DatasetEvaluator
from d2lite.structures import BoxMode, Instances
from d2lite.utils import comm
from d2lite.utils.file_io import atomic_output, safe_output_path

__all__ = ["COCOEvaluator", "instances_to_coco_json"]

logger = logging.getLogger(__name__)

_RESULTS_FILE = "coco_instances_results.json"


def instances_to_coco_json(instances: Instances, img_id: int) -> list[dict]:
    """Converts one image's predictions to COCO results.

    Args:
        instances (Instances): with ``pred_boxes`` (Boxes, XYXY_ABS), ``scores`` and
            ``pred_classes`` (contiguous class ids), on the CPU.
        img_id (int): the image id.

    Returns:
        list[dict]: ``{"image_id", "category_id" (still contiguous), "bbox" (XYWH_ABS), "score"}``.
    """
    if len(instances) == 0:
        return []
    boxes = BoxMode.convert(instances.pred_boxes.tensor, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    scores, classes = instances.scores.tolist(), instances.pred_classes.tolist()
    return [
        {"image_id": img_id, "category_id": int(c), "bbox": b, "score": float(s)}
        for b, s, c in zip(boxes.tolist(), scores, classes)
    ]


class COCOEvaluator(DatasetEvaluator):
    """Evaluates box AP with COCO's metrics, as Detectron2's ``COCOEvaluator``.

    Args:
        dataset_name (str): a dataset whose metadata has ``json_file`` (COCO ground truth) or
            that is registered in ``DatasetCatalog`` (then converted to COCO json into
            ``output_dir``, or a temporary directory), and ideally ``thing_classes`` and
            ``thing_dataset_id_to_contiguous_id``.
        tasks (tuple[str] | CfgNode | None): tasks to evaluate; only "bbox" is supported. A
            ``CfgNode`` (Detectron2's older calling style) is accepted with a warning.
            Defaults to None (inferred from the predictions).
        distributed (bool): gather predictions from every process and evaluate on the main
            one. Defaults to True.
        output_dir (str | None): where the detections are written. Defaults to None.
        max_dets_per_image (int | None): the largest COCOeval maxDets. Defaults to None, i.e.
            [1, 10, 100].
        use_fast_impl (bool): use faster_coco_eval when it is installed (same numbers).
            Defaults to True.
        kpt_oks_sigmas (tuple): accepted for Detectron2 compatibility; d2lite has no keypoints.
        allow_cached_coco (bool): reuse a previously converted json. Defaults to True.

    After ``evaluate``, ``last_box_eval`` holds what the metrics came from (None before, and
    when nothing was scored): ``coco_eval`` (the accumulated COCOeval), ``coco_results`` (the
    detections, dataset category ids), ``rows`` (``coco_metrics.per_class_rows``) and
    ``class_names`` (in the order of ``coco_eval.params.catIds``).
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: tuple[str, ...] | CfgNode | None = None,
        distributed: bool = True,
        output_dir: str | None = None,
        *,
        max_dets_per_image: int | None = None,
        use_fast_impl: bool = True,
        kpt_oks_sigmas: tuple = (),
        allow_cached_coco: bool = True,
    ) -> None:
        self._distributed = distributed
        self._output_dir = output_dir
        # Checked now, before inference runs, so a symlink leading outside costs no time.
        self._results_path = safe_output_path(output_dir, _RESULTS_FILE) if output_dir else None
        self._use_fast_impl = use_fast_impl
        self._max_dets_per_image = [1, 10, max_dets_per_image or 100]
        self.last_box_eval: dict[str, Any] | None = None
        self._tasks = self._check_tasks(tasks)
        self._metadata = MetadataCatalog.get(dataset_name)
        if self._metadata.get("json_file") is None:
            self._convert_to_coco_json(dataset_name, allow_cached_coco)
        with PathManager.open(self._metadata.json_file, "r") as f:
            gt_dict = json.load(f)
        self._do_evaluation = "annotations" in gt_dict
        if self._do_evaluation:
            gt_dict = coco_metrics.prepare_coco_gt(gt_dict, self._metadata.json_file)
        self._coco_api = coco_metrics.build_coco_api(gt_dict, use_fast_impl)
        self._predictions: list[dict] = []

    @staticmethod
    def _check_tasks(tasks: Any) -> tuple[str, ...] | None:
        if isinstance(tasks, CfgNode):
            logger.warning(
                "COCO Evaluator instantiated using config, this is deprecated behavior. "
                "Please pass in explicit arguments instead."
            )
            return None
        if tasks is None:
            return None
        unsupported = sorted(set(tasks) - {"bbox"})
        if unsupported:
            raise ValueError(f"d2lite's COCOEvaluator evaluates only 'bbox', got {unsupported}")
        return tuple(tasks)

    def _convert_to_coco_json(self, dataset_name: str, allow_cached: bool) -> None:
        from d2lite.data.datasets.coco import convert_to_coco_json

        out_dir = self._output_dir or tempfile.mkdtemp(prefix="d2lite_coco_")
        # Dataset names are free text ("../x" or "a/b" are valid); keep the file inside.
        cache_path = safe_output_path(out_dir, f"{dataset_name}_coco_format.json")
        logger.info(f"Trying to convert '{dataset_name}' to COCO format in {cache_path} ...")
        convert_to_coco_json(dataset_name, cache_path, allow_cached=allow_cached)
        self._metadata.json_file = cache_path

    def reset(self) -> None:
        self._predictions = []
        self.last_box_eval = None

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Stores each image's ``instances`` as COCO results (category ids still contiguous)."""
        for inp, out in zip(inputs, outputs):
            if "instances" not in out:
                continue
            instances = out["instances"].to(torch.device("cpu"))
            results = instances_to_coco_json(instances, inp["image_id"])
            self._predictions.append({"image_id": inp["image_id"], "instances": results})

    def evaluate(self, img_ids: list[int] | None = None) -> OrderedDict | dict:
        """Gathers the predictions and computes box AP.

        Args:
            img_ids (list[int] | None): evaluate only these images. Defaults to all GT images.

        Returns:
            OrderedDict: ``{"bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl", "AP-<class>",
            "AP50-<class>"}}`` in percent as plain floats; ``{}`` on non-main processes, when
            no image was processed, or when the json has no annotations.
        """
        predictions = self._predictions
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(self._predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        if len(predictions) == 0:
            logger.warning("[COCOEvaluator] Did not receive valid predictions.")
            return {}
        coco_results = list(itertools.chain(*[p["instances"] for p in predictions]))
        coco_results = self._unmap_category_ids(coco_results)
        if self._results_path:
            logger.info(f"Saving results to {self._results_path}")
            with atomic_output(self._results_path) as tmp, open(tmp, "w") as f:
                json.dump(coco_results, f)
        if not self._do_evaluation:
            logger.info(f"{self._metadata.json_file} has no annotations; nothing to evaluate.")
            return {}
        return OrderedDict({"bbox": self._eval_boxes(coco_results, img_ids)})

    def _unmap_category_ids(self, coco_results: list[dict]) -> list[dict]:
        """Maps contiguous class ids back to the dataset's category ids (which may start at 0)."""
        mapping = self._metadata.get("thing_dataset_id_to_contiguous_id")
        if mapping:
            reverse = {v: k for k, v in mapping.items()}
            for result in coco_results:
                if result["category_id"] not in reverse:
                    raise ValueError(
                        f"A prediction has class={result['category_id']}, but the dataset "
                        f"'{self._metadata.name}' only has {len(reverse)} classes and predicted "
                        f"class id should be in [0, {len(reverse) - 1}]."
                    )
                result["category_id"] = reverse[result["category_id"]]
        known = set(self._coco_api.getCatIds())
        unknown = {r["category_id"] for r in coco_results} - known
        if unknown:
            hint = "" if mapping else (
                "; the metadata has no thing_dataset_id_to_contiguous_id to map predicted "
                "classes back (load the dataset with DatasetCatalog.get first, or set it)"
            )
            raise ValueError(
                f"Predicted category ids {sorted(unknown)} are not categories of "
                f"{self._metadata.json_file} (which has {sorted(known)}){hint}"
            )
        return coco_results

    def _class_names(self, cat_ids: list[int]) -> list[str]:
        thing_classes = self._metadata.get("thing_classes")
        mapping = self._metadata.get("thing_dataset_id_to_contiguous_id") or {}
        categories = self._coco_api.dataset["categories"]
        json_names = {c["id"]: c.get("name", str(c["id"])) for c in categories}
        names = []
        for cat_id in cat_ids:
            idx = mapping.get(cat_id, cat_id)
            in_range = thing_classes is not None and 0 <= idx < len(thing_classes)
            names.append(thing_classes[idx] if in_range else json_names[cat_id])
        return names

    def _eval_boxes(self, coco_results: list[dict], img_ids: list[int] | None) -> dict[str, float]:
        if not coco_results:
            logger.warning("No predictions from the model! AP is 0 wherever there is ground truth.")
        coco_eval = coco_metrics.evaluate_boxes(
            self._coco_api,
            coco_results,
            max_dets_per_image=self._max_dets_per_image,
            img_ids=img_ids,
            use_fast_impl=self._use_fast_impl,
        )
        results = coco_metrics.summarize_boxes(coco_eval)
        table = coco_metrics.format_summary_table(results)
        logger.info(f"Evaluation results for bbox:\n{table}")
        missing = [k for k, v in results.items() if math.isnan(v)]
        if missing:
            logger.info(f"{', '.join(missing)}: no ground truth in that range, reported as NaN.")
        names = self._class_names(list(coco_eval.params.catIds))
        rows = coco_metrics.per_class_rows(coco_eval, self._coco_api, coco_results, names)
        logger.info("Per-category bbox results:\n" + coco_metrics.format_per_class_table(rows))
        no_gt = [r["name"] for r in rows if r["AP"] is None]
        if no_gt:
            logger.info(f"Classes without ground truth (no AP-<class> keys, not in AP): {no_gt}")
        results.update({f"AP-{r['name']}": r["AP"] for r in rows if r["AP"] is not None})
        results.update({f"AP50-{r['name']}": r["AP50"] for r in rows if r["AP50"] is not None})
        self.last_box_eval = dict(
            coco_eval=coco_eval, coco_results=coco_results, rows=rows, class_names=names
        )
        return results
