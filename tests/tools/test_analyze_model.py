"""Tests for tools/analyze_model.py."""
from __future__ import annotations

import re


def test_parameter_and_structure(tiny_config, load_tool):
    tool = load_tool("analyze_model")
    reports = tool.main(["--config-file", str(tiny_config), "--tasks", "parameter", "structure"])
    assert "backbone" in reports["parameter"] and "roi_heads" in reports["parameter"]
    assert reports["structure"].startswith("GeneralizedRCNN(")


def _gflops(text: str) -> float:
    return float(re.search(r"input\(s\): ([0-9.]+) GFlops", text).group(1))


def test_flops_on_test_loader_and_synthetic_images(tiny_config, load_tool):
    tool = load_tool("analyze_model")
    args = ["--config-file", str(tiny_config), "--tasks", "flop"]
    from_loader = tool.main(args + ["--num-inputs", "2"])["flop"]
    assert _gflops(from_loader) > 0 and "conv" in from_loader
    # Without a test dataset, a MIN_SIZE_TEST square (here 128 px) is used: 4x the pixels.
    # --tasks takes several values, so overrides go after another option.
    overrides = ["--num-inputs", "1", "DATASETS.TEST", "()", "INPUT.MIN_SIZE_TEST", "128"]
    synthetic = tool.main(args + overrides)["flop"]
    assert _gflops(synthetic) > 2 * _gflops(from_loader)


def test_activation_count(tiny_config, load_tool):
    tool = load_tool("analyze_model")
    text = tool.main(["--config-file", str(tiny_config), "--tasks", "activation"])["activation"]
    assert float(re.search(r"input\(s\): ([0-9.]+) M activations", text).group(1)) > 0
