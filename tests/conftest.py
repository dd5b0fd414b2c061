"""Fixtures every test gets (no test leaves the "d2lite" logger, log-once memory or trash
registrations to the next one) and weights files shared by several test packages."""
from __future__ import annotations

import logging
from collections import Counter

import pytest
import torch
import torchvision

import d2lite.utils.logger as d2_logger
from d2lite.utils.logger import setup_logger


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch):
    # log_first_n remembers the messages of the whole process; each test starts afresh.
    monkeypatch.setattr(d2_logger, "_LOG_COUNTER", Counter())


@pytest.fixture(scope="session")
def tv50_path(tmp_path_factory) -> str:
    """What torchvision's download holds: a bare resnet50().state_dict() (random values here)."""
    path = tmp_path_factory.mktemp("weights") / "resnet50-0676ba61.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return str(path)


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
