from __future__ import annotations

import logging

import pytest

from d2lite.config import get_cfg
from d2lite.evaluation import flatten_results_dict, print_csv_format, verify_results

RESULTS = {"bbox": {"AP": 50.0, "AP50": 75.5, "AP-cat": 40.0}, "extra": 3}


def test_print_csv_format_logs_copypaste_lines(caplog):
    with caplog.at_level(logging.INFO, logger="d2lite.evaluation.testing"):
        print_csv_format(RESULTS)
    assert [r.getMessage() for r in caplog.records] == [
        "copypaste: Task: bbox",
        "copypaste: AP,AP50",
        "copypaste: 50.0000,75.5000",
        "copypaste: extra=3",
    ]


def test_print_csv_format_rejects_non_mapping():
    with pytest.raises(TypeError, match="dict of results"):
        print_csv_format([1, 2])


def test_verify_results_passes_within_tolerance():
    cfg = get_cfg()
    assert verify_results(cfg, RESULTS)
    cfg.TEST.EXPECTED_RESULTS = [["bbox", "AP", 50.5, 1.0], ["bbox", "AP50", 75.0, 0.6]]
    assert verify_results(cfg, RESULTS)


@pytest.mark.parametrize(
    "expected",
    [
        ["bbox", "AP", 52.0, 1.0],
        ["bbox", "APs", 0.0, 100.0],
        ["segm", "AP", 50.0, 1.0],
    ],
)
def test_verify_results_exits_on_failure(expected, caplog):
    cfg = get_cfg()
    cfg.TEST.EXPECTED_RESULTS = [expected]
    with pytest.raises(SystemExit) as info:
        verify_results(cfg, RESULTS)
    assert info.value.code == 1
    assert "Result verification failed!" in caplog.text


def test_verify_results_nan_fails():
    cfg = get_cfg()
    cfg.TEST.EXPECTED_RESULTS = [["bbox", "AP", 0.0, 1e9]]
    with pytest.raises(SystemExit):
        verify_results(cfg, {"bbox": {"AP": float("nan")}})


def test_verify_results_malformed_entry():
    cfg = get_cfg()
    cfg.TEST.EXPECTED_RESULTS = [["bbox", "AP", 50.0]]
    with pytest.raises(ValueError, match="task, metric, expected, tolerance"):
        verify_results(cfg, RESULTS)


def test_flatten_results_dict():
    flat = flatten_results_dict({"bbox": {"AP": 1.0, "sub": {"x": 2}}, "top": 3})
    assert flat == {"bbox/AP": 1.0, "bbox/sub/x": 2, "top": 3}
