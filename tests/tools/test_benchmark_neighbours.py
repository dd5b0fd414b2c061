"""benchmark --neighbour: the kinds parse, neighbours start, run their workload and stop."""
from __future__ import annotations

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
