"""Evaluation: run a model over a dataset (``inference_on_dataset``) and score its outputs."""
from .coco_evaluation import COCOEvaluator, instances_to_coco_json
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .plots import confusion_matrix, plot_confusion_matrix, plot_pr_curves
from .testing import flatten_results_dict, print_csv_format, verify_results

__all__ = [
    "COCOEvaluator",
    "instances_to_coco_json",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_context",
    "inference_on_dataset",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_pr_curves",
    "flatten_results_dict",
    "print_csv_format",
    "verify_results",
]
