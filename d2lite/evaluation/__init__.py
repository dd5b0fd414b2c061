"""Evaluation: run a model over a dataset (``inference_on_dataset``) and score its outputs.

Metrics only; the pictures and tables of a run's report are in ``d2lite.extras.reports``.
"""
from .coco_evaluation import COCOEvaluator, instances_to_coco_json
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .testing import flatten_results_dict, print_csv_format, verify_results
from ..utils.unsupported import unsupported_class

# Detectron2's evaluators for tasks or datasets d2lite does not cover: importable, not usable.
_OUT_OF_SCOPE = {
    "COCOPanopticEvaluator": "panoptic segmentation",
    "CityscapesInstanceEvaluator": "Cityscapes instance segmentation",
    "CityscapesSemSegEvaluator": "Cityscapes semantic segmentation",
    "LVISEvaluator": "LVIS evaluation",
    "PascalVOCDetectionEvaluator": "Pascal VOC evaluation",
    "RotatedCOCOEvaluator": "rotated boxes",
    "SemSegEvaluator": "semantic segmentation",
}
for _name, _what in _OUT_OF_SCOPE.items():
    globals()[_name] = unsupported_class(_name, _what, __name__, bases=(DatasetEvaluator,))

__all__ = [
    "COCOEvaluator",
    "instances_to_coco_json",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_context",
    "inference_on_dataset",
    "flatten_results_dict",
    "print_csv_format",
    "verify_results",
    *_OUT_OF_SCOPE,
]
