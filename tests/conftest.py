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


@pytest.fixture(autouse=True)
def _forget_implicit_trash_registrations():
    """The d2lite commands register the coco_trash_* names a config names (for
    $D2LITE_DATASETS/trash) when nobody did; drop those a test left, so that the next test finds
    them unregistered, as a fresh process does."""
    from d2lite.data import DatasetCatalog, MetadataCatalog
    from d2lite.extras.trash import TRASH_DATASETS

    before = {name for name in TRASH_DATASETS if name in DatasetCatalog}
    yield
    for name in set(TRASH_DATASETS) - before:
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)
