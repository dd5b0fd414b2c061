from __future__ import annotations

import logging

import pytest

from d2lite.utils.logger import log_every_n, log_every_n_seconds, log_first_n, setup_logger


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


def test_create_small_table_is_a_one_row_pipe_table():
    from d2lite.utils.logger import create_small_table

    lines = create_small_table({"AP": 38.1234, "AP50": 58.9}).splitlines()
    assert len(lines) == 3
    assert lines[0].replace(" ", "") == "|AP|AP50|"
    assert lines[2].replace(" ", "") == "|38.123|58.900|"
