"""Fixtures every test gets: no test leaves the "d2lite" logger configured for the next one."""
from __future__ import annotations

import logging

import pytest

from d2lite.utils.logger import setup_logger


@pytest.fixture(autouse=True)
def _restore_d2lite_logger():
    """Trainers and the CLI configure the "d2lite" logger without propagation; undo that after
    each test so that a later test's ``caplog`` still sees d2lite records, whatever ran before."""
    yield
    for name in ("d2lite", "fvcore"):
        log = logging.getLogger(name)
        for h in list(log.handlers):
            log.removeHandler(h)
            h.close()
        log.propagate = True
        log.setLevel(logging.NOTSET)
    setup_logger.cache_clear()
