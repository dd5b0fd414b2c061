"""Logging evaluation results for copy-paste, and checking them against expected values."""
from __future__ import annotations

import logging
import math
import pprint
import sys
from collections.abc import Mapping

from d2lite.config import CfgNode

__all__ = ["print_csv_format", "verify_results", "flatten_results_dict"]

logger = logging.getLogger(__name__)


def print_csv_format(results: Mapping) -> None:
    """Logs ``results`` as comma-separated lines that paste into a spreadsheet.

    Per-class entries (keys containing "-", such as ``AP-person``) are left out, as Detectron2
    does, so every task fits on two lines.

    Args:
        results (Mapping): ``{task: {metric: float}}`` or ``{name: value}``.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"print_csv_format expects a dict of results, got {type(results).__name__}")
    for task, res in results.items():
        if isinstance(res, Mapping):
            important = [(k, v) for k, v in res.items() if "-" not in k]
            logger.info(f"copypaste: Task: {task}")
            logger.info("copypaste: " + ",".join(k for k, _ in important))
            logger.info("copypaste: " + ",".join(f"{v:.4f}" for _, v in important))
        else:
            logger.info(f"copypaste: {task}={res}")


def verify_results(cfg: CfgNode, results: Mapping) -> bool:
    """Checks ``results`` against ``cfg.TEST.EXPECTED_RESULTS``.

    Each expected entry is ``[task, metric, expected, tolerance]``; an entry passes when the
    metric exists, is finite and is within ``tolerance`` of ``expected``. As in Detectron2 the
    process exits with status 1 when any entry fails, so a CI job can rely on it.

    Args:
        cfg (CfgNode): a config with ``TEST.EXPECTED_RESULTS``.
        results (Mapping): ``{task: {metric: float}}`` as returned by the evaluators.

    Returns:
        bool: True when every entry passes (or there are none).
    """
    expected_results = cfg.TEST.EXPECTED_RESULTS
    if not len(expected_results):
        return True
    ok = True
    for entry in expected_results:
        if len(entry) != 4:
            raise ValueError(
                f"TEST.EXPECTED_RESULTS entries must be [task, metric, expected, tolerance], "
                f"got {entry!r}"
            )
        task, metric, expected, tolerance = entry
        actual = results.get(task, {}).get(metric)
        if actual is None or not math.isfinite(actual) or abs(actual - expected) > tolerance:
            logger.error(f"{task}/{metric}: expected {expected} +- {tolerance}, got {actual}")
            ok = False
    if not ok:
        logger.error("Result verification failed!")
        logger.error("Expected Results: " + str(expected_results))
        logger.error("Actual Results: " + pprint.pformat(dict(results)))
        sys.exit(1)
    logger.info("Results verification passed.")
    return ok


def flatten_results_dict(results: Mapping) -> dict:
    """Flattens nested results: ``{"bbox": {"AP": 1.0}}`` becomes ``{"bbox/AP": 1.0}``."""
    flat = {}
    for key, value in results.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}/{k}": v for k, v in flatten_results_dict(value).items()})
        else:
            flat[key] = value
    return flat
