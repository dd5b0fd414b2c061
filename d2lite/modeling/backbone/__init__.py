"""Backbones: map an image batch to named feature maps (Detectron2's ``modeling.backbone``).

Detectron2's transformer, RegNet and RetinaNet (p6/p7 FPN) backbones import but are not implemented.
"""
from .backbone import Backbone
from .build import BACKBONE_REGISTRY, build_backbone
from .fpn import FPN, LastLevelMaxPool, build_resnet_fpn_backbone
from .resnet import (
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    ResNet,
    ResNetBlockBase,
    build_resnet_backbone,
    make_stage,
)
from .tiny import TinyBackbone
from .unsupported import (
    LastLevelP6P7,
    MViT,
    RegNet,
    SimpleFeaturePyramid,
    SwinTransformer,
    ViT,
    get_vit_lr_decay_rate,
)

__all__ = [
    "Backbone",
    "BACKBONE_REGISTRY",
    "build_backbone",
    "FPN",
    "LastLevelMaxPool",
    "build_resnet_fpn_backbone",
    "BasicBlock",
    "BasicStem",
    "BottleneckBlock",
    "ResNet",
    "ResNetBlockBase",
    "build_resnet_backbone",
    "make_stage",
    "TinyBackbone",
    "LastLevelP6P7",
    "MViT",
    "RegNet",
    "SimpleFeaturePyramid",
    "SwinTransformer",
    "ViT",
    "get_vit_lr_decay_rate",
]
