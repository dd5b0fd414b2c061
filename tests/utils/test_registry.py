from __future__ import annotations

import collections.abc

import pytest
import torch
from fvcore.common.registry import Registry as FvcoreRegistry

from d2lite.data.transforms import RandomFlip
from d2lite.modeling.meta_arch import GeneralizedRCNN
from d2lite.utils.registry import Registry, _convert_target_to_string, locate


class _Outer:
    class Inner:
        pass


@pytest.mark.parametrize(
    "obj", [GeneralizedRCNN, _Outer.Inner, len, dict, torch.optim.SGD, collections.abc.Mapping]
)
def test_locate_inverts_convert_target_to_string(obj):
    assert locate(_convert_target_to_string(obj)) is obj


def test_names_skip_implementation_modules():
    assert RandomFlip.__module__ != "d2lite.data.transforms"
    assert _convert_target_to_string(RandomFlip) == "d2lite.data.transforms.RandomFlip"
    assert _convert_target_to_string(torch.optim.SGD) == "torch.optim.SGD"
    assert _convert_target_to_string(_Outer.Inner).endswith("test_registry._Outer.Inner")
    assert _convert_target_to_string(len) == "builtins.len"


def test_locate_reexported_name_and_builtins():
    assert locate("torch.optim.SGD") is torch.optim.SGD
    assert locate("torch.optim.sgd.SGD") is torch.optim.SGD
    assert locate("len") is len and locate("builtins.dict") is dict


@pytest.mark.parametrize("name", ["asdf", "torch.optim.NoSuchOptimizer", "torch.nn.Linear.nope"])
def test_locate_failure_is_import_error(name):
    with pytest.raises(ImportError, match="Cannot locate"):
        locate(name)


def test_registry_is_fvcores():
    assert Registry is FvcoreRegistry
    reg = Registry("THINGS")
    reg.register(_Outer)
    assert reg.get("_Outer") is _Outer
    with pytest.raises(KeyError, match="THINGS"):
        reg.get("missing")


def test_locate_shows_a_module_s_own_import_error(tmp_path, monkeypatch):
    (tmp_path / "d2lite_broken_mod.py").write_text("import d2lite_missing_dependency\nX = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="d2lite_missing_dependency"):
        locate("d2lite_broken_mod.X")
