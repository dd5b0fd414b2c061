"""Logger setup for scripts and rate-limited logging helpers for library code."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections import Counter

from tabulate import tabulate

__all__ = [
    "setup_logger",
    "log_first_n",
    "log_every_n",
    "log_every_n_seconds",
    "create_small_table",
    "D2_LOG_BUFFER_SIZE_KEY",
    "DEFAULT_LOG_BUFFER_SIZE",
]

# Detectron2's names for the write buffer of logs on remote storage; d2lite writes log files
# through the local file system only, so they are kept for scripts that read them.
D2_LOG_BUFFER_SIZE_KEY = "D2_LOG_BUFFER_SIZE"
DEFAULT_LOG_BUFFER_SIZE = 1024 * 1024

_DATE_FORMAT = "%m/%d %H:%M:%S"
_RED, _RED_UNDERLINE, _GREEN, _RESET = "\x1b[31m", "\x1b[31;4m", "\x1b[32m", "\x1b[0m"


class _ColorfulFormatter(logging.Formatter):
    """Shortens the ``d2lite.`` logger prefix and colours the time, warnings and errors."""

    def __init__(self, *args, root_name: str, abbrev_name: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.name = record.name.replace(self._root_name, self._abbrev_name)
        log = super().formatMessage(record)
        if record.levelno == logging.WARNING:
            return f"{_RED}WARNING{_RESET} {log}"
        if record.levelno >= logging.ERROR:
            return f"{_RED_UNDERLINE}ERROR{_RESET} {log}"
        return log


def _add_handler(
    logger: logging.Logger, handler: logging.Handler, level: int, formatter: logging.Formatter
) -> None:
    handler.setLevel(level)
    handler.setFormatter(formatter)
    logger.addHandler(handler)


@functools.lru_cache()  # the same arguments configure a logger once, however often it is called
def setup_logger(
    output: str | None = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "d2lite",
    abbrev_name: str | None = None,
    enable_propagation: bool = False,
) -> logging.Logger:
    """Configures logger ``name``: stdout on rank 0, and a file on rank 0 if ``output`` is set.

    The terminal shows INFO and above; the file also keeps DEBUG records (the environment,
    the full config, the model), so the first screen of a run stays short and the log file
    still holds everything. Detectron2 prints DEBUG on the terminal too.

    Args:
        output (str | None): a ``.txt``/``.log`` file, or a directory that gets ``log.txt``.
            Defaults to None (no file).
        distributed_rank (int): rank of this process; other ranks log nothing. Defaults to 0.
        color (bool): colour warnings and errors on the terminal. Defaults to True.
        name (str): the root logger to configure. Defaults to "d2lite".
        abbrev_name (str | None): shown instead of ``name`` on the terminal.
            Defaults to "d2" for "d2lite", else ``name``.
        enable_propagation (bool): also pass records to the root logger. Defaults to False.

    Returns:
        logging.Logger: the configured logger.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = enable_propagation
    if abbrev_name is None:
        abbrev_name = "d2" if name == "d2lite" else name
    plain = logging.Formatter("[%(asctime)s] %(name)s %(levelname)s: %(message)s", _DATE_FORMAT)
    if distributed_rank != 0:
        # Non-main ranks stay quiet; their records are dropped, not printed N times.
        logger.addHandler(logging.NullHandler())
        return logger
    terminal = plain
    if color:
        terminal = _ColorfulFormatter(
            f"{_GREEN}[%(asctime)s %(name)s]:{_RESET} %(message)s",
            datefmt=_DATE_FORMAT,
            root_name=name,
            abbrev_name=str(abbrev_name),
        )
    _add_handler(logger, logging.StreamHandler(stream=sys.stdout), logging.INFO, terminal)
    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        os.makedirs(os.path.dirname(filename) or ".", exist_ok=True)
        _add_handler(logger, logging.FileHandler(filename, mode="a"), logging.DEBUG, plain)
    return logger


def _find_caller() -> tuple[str, tuple[str, int, str]]:
    """Returns the module name and (file, line, function) of the first frame outside this file."""
    frame = sys._getframe(2)
    while frame:
        code = frame.f_code
        if os.path.join("utils", "logger.") not in code.co_filename:
            mod_name = frame.f_globals.get("__name__", "__main__")
            return mod_name, (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return "__main__", ("", 0, "")


_LOG_COUNTER: Counter = Counter()
_LOG_TIMER: dict = {}


def log_first_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None, key="caller") -> None:
    """Logs ``msg`` only the first ``n`` times.

    Args:
        lvl (int): logging level.
        n (int): how many times to log. Defaults to 1.
        name (str | None): logger name. Defaults to the caller's module.
        key (str | tuple[str]): "caller", "message" or both: what identifies repeated calls.
            Defaults to "caller".
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    caller_module, caller_key = _find_caller()
    hash_key = (caller_key if "caller" in keys else ()) + ((msg,) if "message" in keys else ())
    _LOG_COUNTER[hash_key] += 1
    if _LOG_COUNTER[hash_key] <= n:
        logging.getLogger(name or caller_module).log(lvl, msg)


def log_every_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None) -> None:
    """Logs ``msg`` on the 1st, (n+1)-th, (2n+1)-th ... call from the same line."""
    caller_module, key = _find_caller()
    _LOG_COUNTER[key] += 1
    if n == 1 or _LOG_COUNTER[key] % n == 1:
        logging.getLogger(name or caller_module).log(lvl, msg)


def log_every_n_seconds(lvl: int, msg: str, n: float = 1, *, name: str | None = None) -> None:
    """Logs ``msg`` at most once every ``n`` seconds from the same line."""
    caller_module, key = _find_caller()
    last = _LOG_TIMER.get(key)
    now = time.time()
    if last is None or now - last >= n:
        logging.getLogger(name or caller_module).log(lvl, msg)
        _LOG_TIMER[key] = now


def create_small_table(small_dict: dict) -> str:
    """Formats a flat dict as a one-row table, keys as the header (floats with 3 decimals).

    Args:
        small_dict (dict): e.g. ``{"AP": 38.1, "AP50": 58.9}``.

    Returns:
        str: the table as text (a GitHub-style pipe table, as Detectron2's).
    """
    keys, values = zip(*small_dict.items()) if small_dict else ((), ())
    return tabulate(
        [values], headers=keys, tablefmt="pipe", floatfmt=".3f", stralign="center", numalign="center"
    )
