"""URL and detectron2:// resolution through d2lite's PathManager, without network."""

from __future__ import annotations

import os
import urllib.error

import iopath.common.file_io as iopath_file_io
import pytest
import torch
from torch import nn

from d2lite.checkpoint import DetectionCheckpointer
from d2lite.utils.file_io import Detectron2Handler, PathManager

URL = "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/MSRA/R-50.pkl"


def test_detectron2_prefix_translates_to_model_zoo_url():
    handler = Detectron2Handler(url_handler=None)
    assert handler.translate("detectron2://ImageNetPretrained/MSRA/R-50.pkl") == URL


def test_detectron2_path_downloads_translated_url_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LITE_CACHE", str(tmp_path / "cache"))
    requested = []

    def fake_download(url, dirname, filename):
        requested.append(url)
        os.makedirs(dirname, exist_ok=True)
        path = os.path.join(dirname, filename)
        torch.save({"model": nn.Linear(2, 2).state_dict()}, path)
        return path

    monkeypatch.setattr(iopath_file_io, "download", fake_download)
    name = f"test/{tmp_path.name}/model_final.pth"
    local = PathManager.get_local_path(f"detectron2://{name}")
    assert requested == [f"https://dl.fbaipublicfiles.com/detectron2/{name}"]
    assert local == str(tmp_path / "cache" / "detectron2" / name)
    # Cached: a second lookup does not download again, and the checkpointer can load it.
    assert PathManager.get_local_path(f"detectron2://{name}") == local
    DetectionCheckpointer(nn.Linear(2, 2)).load(f"detectron2://{name}")
    assert len(requested) == 1


def test_offline_download_error_names_url_and_local_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LITE_CACHE", str(tmp_path / "cache"))

    def offline(url, dirname, filename):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(iopath_file_io, "download", offline)
    path = f"detectron2://offline/{tmp_path.name}/model_final_280758.pkl"
    with pytest.raises(OSError) as info:
        DetectionCheckpointer(nn.Linear(2, 2)).load(path)
    message = str(info.value)
    assert f"https://dl.fbaipublicfiles.com/detectron2/offline/{tmp_path.name}" in message
    assert "name resolution" in message and "MODEL.WEIGHTS /path/to/model_final.pkl" in message
