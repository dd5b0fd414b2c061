"""Backbones: map an image batch to named feature maps (Detectron2's ``modeling.backbone``)."""
from .backbone import BACKBONE_REGISTRY, Backbone, build_backbone
from .fpn import FPN, LastLevelMaxPool, LastLevelP6P7, build_resnet_fpn_backbone
from .resnet import (
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    ResNet,
    build_resnet_backbone,
    make_stage,
)
from .tiny import TinyBackbone

__all__ = [
    "BACKBONE_REGISTRY",
    "Backbone",
    "BasicBlock",
    "BasicStem",
    "BottleneckBlock",
    "FPN",
    "LastLevelMaxPool",
    "LastLevelP6P7",
    "ResNet",
    "TinyBackbone",
    "build_backbone",
    "build_resnet_backbone",
    "build_resnet_fpn_backbone",
    "make_stage",
]
