from __future__ import annotations

import logging
import os
import sys

import pytest

from d2lite.utils.logger import setup_logger

# The tests import their toys as `engine_toys` (pytest runs with --import-mode=importlib, which
# leaves sys.path alone); spawned workers inherit sys.path and find them too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _restore_d2lite_logger():
    """DefaultTrainer configures the "d2lite" logger (no propagation); undo that after each test
    so other tests' ``caplog`` still sees d2lite records."""
    yield
    for name in ("d2lite", "fvcore"):
        log = logging.getLogger(name)
        for h in list(log.handlers):
            log.removeHandler(h)
            h.close()
        log.propagate = True
        log.setLevel(logging.NOTSET)
    setup_logger.cache_clear()
