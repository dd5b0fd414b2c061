"""The package-wide iopath ``PathManager``: local paths, http(s) URLs and ``detectron2://``.

Remote files are downloaded once into a cache directory (``$D2LITE_CACHE``, else
``~/.torch/iopath_cache``) and then read locally.
"""

from __future__ import annotations

import os
from typing import Any

from iopath.common.file_io import HTTPURLHandler, PathHandler
from iopath.common.file_io import PathManager as PathManagerBase

__all__ = ["PathManager", "PathHandler", "Detectron2Handler", "CachedHTTPURLHandler"]


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
