"""modeling/registry.py: every registry in one module, reachable from Detectron2's paths."""
from __future__ import annotations

import importlib

import pytest
from fvcore.common.registry import Registry

from d2lite.config import get_cfg
from d2lite.layers import ShapeSpec
from d2lite.modeling import build_model, registry

# Where Detectron2 defines each registry d2lite covers (module under d2lite.modeling).
DETECTRON2_PATHS = {
    "META_ARCH_REGISTRY": "meta_arch.build",
    "BACKBONE_REGISTRY": "backbone.build",
    "PROPOSAL_GENERATOR_REGISTRY": "proposal_generator.build",
    "RPN_HEAD_REGISTRY": "proposal_generator.rpn",
    "ANCHOR_GENERATOR_REGISTRY": "anchor_generator",
    "ROI_HEADS_REGISTRY": "roi_heads.roi_heads",
    "ROI_BOX_HEAD_REGISTRY": "roi_heads.box_head",
}


def test_every_registry_of_the_package_is_the_one_in_registry_py():
    names = [n for n in registry.__all__ if n.endswith("_REGISTRY")]
    assert len(names) == 10
    package = importlib.import_module("d2lite.modeling")
    for name in names:
        assert isinstance(getattr(registry, name), Registry)
        assert getattr(package, name) is getattr(registry, name), name


@pytest.mark.parametrize("name, module", sorted(DETECTRON2_PATHS.items()))
def test_registry_imports_from_detectron2_module_path(name, module):
    mod = importlib.import_module(f"d2lite.modeling.{module}")
    assert getattr(mod, name) is getattr(registry, name)


def test_build_registered_calls_cfg_then_input_shape():
    calls = []
    reg = Registry("TEST_PARTS")

    @reg.register()
    def part(*args):
        calls.append(args)
        return "built"

    cfg, shape = get_cfg(), ShapeSpec(channels=3)
    assert registry.build_registered(reg, "part", cfg, shape) == "built"
    assert registry.build_registered(reg, "part", cfg) == "built"
    assert calls == [(cfg, shape), (cfg,)]


def test_unknown_name_keeps_fvcores_error():
    with pytest.raises(KeyError, match="No object named 'Nope' found in 'BACKBONE' registry!"):
        registry.build_registered(registry.BACKBONE_REGISTRY, "Nope", get_cfg(), ShapeSpec())
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "Nope"
    with pytest.raises(KeyError, match="No object named 'Nope' found in 'META_ARCH' registry!"):
        build_model(cfg)
