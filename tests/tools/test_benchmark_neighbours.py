"""benchmark --neighbour: the kinds parse, neighbours start, run their workload and stop."""
from __future__ import annotations

import subprocess
import sys

import pytest

from d2lite.cli.benchmark.neighbours import neighbours, parse_neighbour


def test_parse_neighbour_kinds_and_nice_levels():
    assert parse_neighbour("busy") == ("busy", 0)
    assert parse_neighbour("train:10") == ("train", 10)
    with pytest.raises(ValueError, match="unknown neighbour 'yes'.*busy, torch, train"):
        parse_neighbour("yes")
    with pytest.raises(ValueError, match="0-19"):
        parse_neighbour("torch:high")


def test_neighbours_run_until_the_block_ends_then_stop():
    with neighbours([("busy", 5), ("torch", 0)], seconds=120, threads=1) as procs:
        assert [p.poll() for p in procs] == [None, None]  # both are running their loops
    assert all(p.returncode is not None for p in procs)


def test_benchmark_beside_a_neighbour_reports_quiet_and_loaded(repo):
    cmd = [sys.executable, "tools/benchmark.py", "--config-file", "model_zoo/tiny/faster_rcnn_tiny.yaml",
           "--task", "eval", "--size", "64", "--iters", "2", "--rounds", "1", "--threads", "1",
           "--compare", "torchvision", "--neighbour", "busy:5", "--neighbour-seconds", "120"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "beside busy (nice 5), the same rounds:" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.split("the same rounds:")[1].splitlines()
            if line.startswith(("d2lite", "torchvision"))}
    quiet, loaded, ratio, worst = (float(v) for v in rows["d2lite"][:4])
    assert quiet > 0 and loaded > 0 and ratio > 0  # (the times are rounded to 1 ms)
    assert worst >= loaded and "torchvision" in rows
    assert "d2lite: loaded median <= 3x quiet:" in text and "loaded median <= torchvision's" in text
    assert "first iteration of a process vs the median: d2lite" in text


def test_unknown_neighbour_is_a_usage_error(repo):
    cmd = [sys.executable, "tools/benchmark.py", "--config-file", "x.yaml", "--neighbour", "yes"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown neighbour 'yes'" in out.stderr
