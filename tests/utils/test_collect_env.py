from __future__ import annotations

from d2lite.utils.collect_env import collect_env_info


def test_collect_env_info_names_versions():
    info = collect_env_info()
    for key in ("Python", "PyTorch", "torchvision", "d2lite", "GPU available", "CPU threads"):
        assert key in info
