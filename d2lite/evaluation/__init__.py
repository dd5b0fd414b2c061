"""Evaluation: run a model over a dataset (``inference_on_dataset``) and score its outputs."""
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .testing import flatten_results_dict, print_csv_format, verify_results

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_context",
    "inference_on_dataset",
    "flatten_results_dict",
    "print_csv_format",
    "verify_results",
]
