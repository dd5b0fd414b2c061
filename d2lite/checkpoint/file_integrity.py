"""Checkpoint files on disk stay whole: atomic writes, stale temporary files, CRC and md5 checks.

* :func:`atomic_write` (d2lite.utils.file_io's, the one every writer uses) writes through a
  hidden temporary file ``.{target}.{host}-{pid}.{random}.tmp[.ext]`` next to the target, then
  renames it.
* :func:`remove_stale_temp_files` deletes such files left behind by a killed writer, but never
  one that a live process may still be writing (see its docstring for the rule).
* :func:`verify_zip_crcs` checks the CRC-32 of every entry of a torch zip checkpoint, which
  ``torch.load`` skips, so a flipped byte inside tensor data is caught.
* :func:`model_zoo_md5_mismatch` checks the md5 prefix that Detectron2's model-zoo file names
  carry (``model_final_280758.pkl``); pickles have no CRC of their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import zipfile
from typing import IO

from ..utils.file_io import _host, atomic_write

__all__ = [
    "atomic_write",
    "remove_stale_temp_files",
    "find_damaged_zip_entry",
    "verify_zip_crcs",
    "model_zoo_md5_mismatch",
]

logger = logging.getLogger(__name__)

# A temporary file of another host (whose pid cannot be checked) or of an older d2lite (whose
# name has no pid) is removed only when untouched this long: a live writer modifies its file
# continuously until the rename, and 15 minutes is far beyond any fsync stall.
STALE_AFTER_S = 15 * 60

# Targets are the files DetectionCheckpointer writes; the 32 hex digits are a uuid4. The
# "{host}-{pid}." part is absent in files written before d2lite named the writer.
_TEMP_NAME = re.compile(
    r"^\.(?P<target>.+\.pth|last_checkpoint)\."
    r"(?:(?P<host>[A-Za-z0-9-]*)-(?P<pid>\d+)\.)?[0-9a-f]{32}\.tmp(?:\.pth)?$"
)
_ZIP_MAGIC = b"PK\x03\x04"
_MODEL_ZOO_NAME = re.compile(r"^model_final_(?P<md5>[0-9a-f]{6})\.pkl$")


def _pid_running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host; True when that cannot be told."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, as another user
        return True
    return True


def _is_stale(match: re.Match[str], mtime: float, now: float) -> bool:
    """A temp file is stale if its writer, on this host, has exited, or else if it is old."""
    pid = match.group("pid")
    # Our own pid may be a previous incarnation (containers reuse pids): judge it by age.
    if pid is not None and match.group("host") == _host() and int(pid) != os.getpid():
        return not _pid_running(int(pid))
    return now - mtime > STALE_AFTER_S


def remove_stale_temp_files(directory: str) -> list[str]:
    """Removes the temporary files of :func:`atomic_write` that no live writer will finish.

    Only names of d2lite's own pattern for checkpoints and ``last_checkpoint`` are considered.
    One written on this host is removed once its writer's pid no longer runs, so another live
    run sharing ``directory`` keeps its file; one from another host (or an older d2lite) is
    removed when unmodified for ``STALE_AFTER_S`` seconds.

    Args:
        directory (str): the checkpoint directory; nothing happens if it does not exist.

    Returns:
        list[str]: the paths removed.
    """
    if not os.path.isdir(directory):
        return []
    removed, now = [], time.time()
    for entry in os.scandir(directory):
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
            if not _is_stale(match, stat.st_mtime, now):
                continue
            os.remove(entry.path)
        except FileNotFoundError:
            continue  # the writer renamed it, or another run removed it, meanwhile
        removed.append(entry.path)
        logger.info(
            f"Removed {entry.path} ({stat.st_size / 2**20:.1f} MiB), the unfinished write of "
            f"{match.group('target')} by a run that was killed"
        )
    return removed


def find_damaged_zip_entry(f: IO[bytes]) -> str | None:
    """The first entry whose CRC-32 does not match, if ``f`` is a zip archive (torch >= 1.6).

    ``torch.load`` reads entries by offset without checking their CRC, so a flipped byte in
    tensor data would load silently. Legacy (non-zip) torch files have no CRC and pass.

    Args:
        f (IO[bytes]): the open file, at any position; it is left at offset 0.

    Returns:
        str | None: the damaged entry's name (e.g. ``"model_0000004/data/3"``), or None.

    Raises:
        zipfile.BadZipFile: the archive's structure is damaged (e.g. truncated).
    """
    f.seek(0)
    try:
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            return None
        with zipfile.ZipFile(f) as archive:  # it seeks to the central directory itself
            return archive.testzip()
    finally:
        f.seek(0)


def _describe_zip_entry(name: str) -> str:
    """What an entry of a torch zip checkpoint holds, for error messages."""
    if name.endswith("/data.pkl"):
        return "the pickled structure of the checkpoint"
    if "/data/" in name:
        return f"the raw bytes of tensor storage {name.rsplit('/', 1)[-1]}"
    return "torch's metadata"


def verify_zip_crcs(filename: str, f: IO[bytes]) -> None:
    """Raises a RuntimeError naming ``filename`` and the entry if a CRC-32 does not match.

    About 0.4 s per GB once the file is in the page cache (where ``torch.load`` then finds it).

    Args:
        filename (str): the file's name, for the message.
        f (IO[bytes]): the open file; it is left at offset 0.

    Raises:
        RuntimeError: an entry's bytes changed after it was written.
        zipfile.BadZipFile: the archive's structure is damaged (e.g. truncated).
    """
    damaged = find_damaged_zip_entry(f)
    if damaged:
        raise RuntimeError(
            f"Checkpoint {filename} is corrupt: its entry '{damaged}' "
            f"({_describe_zip_entry(damaged)}) fails its CRC-32 or header check, so bytes "
            "changed after it was written (a disk, copy or transfer error). Copy it again, or "
            "resume from an earlier checkpoint by writing that file's name into last_checkpoint."
        )


def model_zoo_md5_mismatch(path: str) -> str | None:
    """The md5 of ``path`` if its name is a Detectron2 model-zoo name it does not match.

    Detectron2's model zoo names each file by its md5 prefix (``model_final_280758.pkl``);
    other names are not checked. About 0.2 s per 100 MB.

    Returns:
        str | None: the file's md5 hex digest on a mismatch; None otherwise.
    """
    match = _MODEL_ZOO_NAME.match(os.path.basename(path))
    if match is None:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    return None if actual.startswith(match.group("md5")) else actual
