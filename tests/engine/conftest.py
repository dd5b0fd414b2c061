from __future__ import annotations

import logging

import pytest

from d2lite.utils.logger import setup_logger


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
