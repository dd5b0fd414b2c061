"""The package-wide iopath ``PathManager`` and the output-path helpers every writer shares.

``PathManager`` reads local paths, http(s) URLs and ``detectron2://``. Remote files are
downloaded once into a cache directory (``$D2LITE_CACHE``, else ``~/.torch/iopath_cache``)
and then read locally.

``safe_output_path`` turns a name taken from data (a dataset ``file_name``, an image id) into a
path that cannot leave its output folder, and ``atomic_output`` writes a file so that readers
see either the previous file or the complete new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable
from typing import IO, Any, Iterator

from iopath.common.file_io import HTTPURLHandler, PathHandler
from iopath.common.file_io import PathManager as PathManagerBase

__all__ = [
    "PathManager",
    "PathHandler",
    "Detectron2Handler",
    "CachedHTTPURLHandler",
    "safe_output_path",
    "atomic_output",
    "atomic_write",
    "temp_path_for",
]

logger = logging.getLogger(__name__)


def _cache_dir() -> str:
    return os.path.expanduser(os.getenv("D2LITE_CACHE", "~/.torch/iopath_cache"))


class CachedHTTPURLHandler(HTTPURLHandler):
    """iopath's URL handler with d2lite's cache directory and an actionable download error."""

    def _get_local_path(
        self, path: str, force: bool = False, cache_dir: str | None = None, **kwargs: Any
    ) -> str:
        try:
            return super()._get_local_path(
                path, force=force, cache_dir=cache_dir or _cache_dir(), **kwargs
            )
        except OSError as e:
            # URLError and socket errors are OSErrors; keep the type so callers' handlers work.
            raise OSError(
                f"Could not download {path}: {e}. If this machine is offline, download the "
                "file elsewhere, copy it here and point to the local copy instead, e.g. "
                "MODEL.WEIGHTS /path/to/model_final.pkl"
            ) from e


class Detectron2Handler(PathHandler):
    """Resolves ``detectron2://X`` to Detectron2's model zoo at dl.fbaipublicfiles.com."""

    PREFIX = "detectron2://"
    S3_DETECTRON2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"

    def __init__(self, url_handler: PathHandler) -> None:
        """
        Args:
            url_handler (PathHandler): downloads the translated https URL.
        """
        super().__init__()
        self._url_handler = url_handler

    def _get_supported_prefixes(self) -> list[str]:
        return [self.PREFIX]

    def translate(self, path: str) -> str:
        """Returns the https URL that ``detectron2://...`` stands for."""
        return self.S3_DETECTRON2_PREFIX + path[len(self.PREFIX) :]

    def _get_local_path(self, path: str, **kwargs: Any) -> str:
        return self._url_handler._get_local_path(self.translate(path), **kwargs)

    def _open(self, path: str, mode: str = "r", **kwargs: Any) -> Any:
        return self._url_handler._open(self.translate(path), mode, **kwargs)


PathManager = PathManagerBase()
_url_handler = CachedHTTPURLHandler()
PathManager.register_handler(_url_handler)
PathManager.register_handler(Detectron2Handler(_url_handler))


def _confined_parts(name: str) -> tuple[list[str], bool]:
    """The segments of ``name`` once normalised lexically, and whether any had to be dropped.

    A root (or drive) and any ``..`` that would climb above the start are dropped; a ``..``
    inside the name cancels the segment before it, as the OS would for plain folders.
    """
    drive, rest = os.path.splitdrive(name)
    dropped = bool(drive) or os.path.isabs(name)
    separators = re.escape(os.sep + (os.altsep or ""))
    parts: list[str] = []
    for part in re.split(f"[{separators}]", rest):
        if part == "..":
            dropped = dropped or not parts
            parts = parts[:-1]
        elif part not in ("", "."):
            parts.append(part)
    return parts, dropped


def safe_output_path(output_dir: str, name: str, *, source: str | None = None) -> str:
    """The path under ``output_dir`` where a file named ``name`` (taken from data) goes.

    ``name`` keeps its layout while it stays inside: ``"test/0000.jpg"`` becomes
    ``OUTPUT/test/0000.jpg``. What would leave the folder is dropped, with a warning naming
    ``name``: a leading ``/`` and ``..`` segments climbing above it (``"../../victim.jpg"``
    becomes ``OUTPUT/victim.jpg``, ``"/data/x/a.jpg"`` becomes ``OUTPUT/data/x/a.jpg``).
    ``..`` is resolved on the text, never by the OS, so it cannot climb out of a symlink.

    Args:
        output_dir (str): the folder to stay in. It may itself be a symlink (e.g. to a bigger
            disk); only what lies below it must resolve inside it.
        name (str): the relative name wanted, e.g. a dataset ``file_name``.
        source (str | None): the input ``name`` comes from, also named in warnings and
            errors. Defaults to None.

    Returns:
        str: ``os.path.join(output_dir, <confined name>)``.

    Raises:
        ValueError: if ``name`` names no file (``""``, ``"."``, ``"a/.."``), or if the path
            resolves outside ``output_dir`` through a symlink: a subfolder that is a symlink
            pointing elsewhere, or a symlink (even a dangling one) at the destination.
    """
    parts, dropped = _confined_parts(name)
    origin = f" (from {source})" if source else ""
    if not parts:
        raise ValueError(f"Output name {name!r}{origin} names no file inside {output_dir}")
    path = os.path.join(output_dir, *parts)
    if dropped:
        logger.warning(
            f"Output name {name!r}{origin} points outside {output_dir}; writing {path} instead"
        )
    root = os.path.realpath(output_dir)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise ValueError(
            f"Refusing to write {name!r}{origin}: {path} leads through a symlink to {real}, "
            f"outside {output_dir}. Remove the symlink or choose another output folder."
        )
    return path


def _host() -> str:
    """This machine's name, reduced to the characters a temporary file name may carry."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64]


def temp_path_for(path: str) -> str:
    """The hidden temporary name every atomic write of ``path`` goes through.

    ``.{name}.{host}-{pid}.{32 hex}.tmp{ext}``: the writer is named, so a later run can tell a
    killed writer's file from a live one's (``remove_stale_temp_files`` in d2lite.checkpoint),
    and the target's extension comes last, so PIL and matplotlib pick the right format.
    """
    directory, base = os.path.split(os.path.abspath(path))
    ext = os.path.splitext(base)[1]
    return os.path.join(directory, f".{base}.{_host()}-{os.getpid()}.{uuid.uuid4().hex}.tmp{ext}")


def _fsync(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yields a temporary path to write ``path``'s content to; renames it onto ``path`` after.

    The temporary file (:func:`temp_path_for`) lies in the same folder, so the rename is
    atomic, and is fsync'ed before it, so a crash leaves the previous file or the complete new
    one. If the block raises, the temporary file is removed and ``path`` is untouched. The
    rename replaces a symlink at ``path`` instead of writing through it. Parent folders are
    created.

    Example::

        with atomic_output(csv_path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    """
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = temp_path_for(path)
    # Created here, exclusively, with 0o666 (the umask applies, unlike mkstemp's 0o600).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        if hasattr(os, "O_DIRECTORY"):  # persist the rename itself, so a power loss keeps it
            _fsync(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """:func:`atomic_output` for a writer of bytes: ``write(f)`` fills the open binary file."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        write(f)
