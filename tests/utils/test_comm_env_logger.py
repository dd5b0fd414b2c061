from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch

from d2lite.utils import comm
from d2lite.utils.collect_env import collect_env_info
from d2lite.utils.env import TORCH_VERSION, seed_all_rng
from d2lite.utils.logger import log_every_n, log_every_n_seconds, log_first_n, setup_logger


def test_comm_single_process():
    assert comm.get_world_size() == 1 and comm.get_rank() == 0
    assert comm.get_local_rank() == 0 and comm.get_local_size() == 1
    assert comm.is_main_process()
    comm.synchronize()
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    assert comm.gather(3) == [3]
    d = {"x": torch.tensor(2.0)}
    assert comm.reduce_dict(d) is d
    assert isinstance(comm.shared_random_seed(), int)


def test_seed_all_rng_is_reproducible():
    assert seed_all_rng(7) == 7
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_all_rng(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert 0 <= seed_all_rng(None) < 2**32
    assert len(TORCH_VERSION) == 2 and TORCH_VERSION >= (2, 0)


def test_collect_env_info_names_versions():
    info = collect_env_info()
    for key in ("Python", "PyTorch", "torchvision", "d2lite", "GPU available", "CPU threads"):
        assert key in info


@pytest.fixture
def clean_logger():
    yield
    for name in ("d2lite_test", "d2lite_test2"):
        log = logging.getLogger(name)
        for h in list(log.handlers):
            log.removeHandler(h)
            h.close()
    setup_logger.cache_clear()


def test_setup_logger_is_idempotent_and_writes_file(tmp_path, clean_logger):
    log = setup_logger(str(tmp_path), name="d2lite_test", color=False)
    assert setup_logger(str(tmp_path), name="d2lite_test", color=False) is log
    assert len(log.handlers) == 2  # stdout and file, added once
    logging.getLogger("d2lite_test.sub").warning("hello file")
    for h in log.handlers:
        h.flush()
    assert "hello file" in (tmp_path / "log.txt").read_text()


def test_setup_logger_other_ranks_write_nothing(tmp_path, clean_logger):
    log = setup_logger(str(tmp_path), distributed_rank=1, name="d2lite_test2")
    log.warning("quiet")
    assert not (tmp_path / "log.txt").exists()


def test_rate_limited_logging(caplog):
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            log_first_n(logging.INFO, "first", n=2, name="d2lite_rl")
        for _ in range(5):
            log_every_n(logging.INFO, "every", n=2, name="d2lite_rl")
        for _ in range(3):
            log_every_n_seconds(logging.INFO, "seconds", n=60, name="d2lite_rl")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs.count("first") == 2
    assert msgs.count("every") == 3
    assert msgs.count("seconds") == 1
