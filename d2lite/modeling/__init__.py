"""Models: backbones, anchors, RPN, ROI heads and the meta-architectures that join them.

Importing this package registers every built-in backbone, head and meta-architecture.
"""
from ..layers import ShapeSpec
from .anchor_generator import (
    ANCHOR_GENERATOR_REGISTRY,
    DefaultAnchorGenerator,
    build_anchor_generator,
)
from .backbone import (
    BACKBONE_REGISTRY,
    FPN,
    Backbone,
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    ResNet,
    build_backbone,
    build_resnet_backbone,
    build_resnet_fpn_backbone,
    make_stage,
)
from .backbone.tiny import TinyBackbone
from .box_regression import Box2BoxTransform, Box2BoxTransformLinear
from .matcher import Matcher
from .meta_arch import (
    META_ARCH_REGISTRY,
    GeneralizedRCNN,
    ProposalNetwork,
    build_model,
    resolve_device,
)
from .poolers import ROIPooler
from .postprocessing import detector_postprocess
from .proposal_generator import (
    PROPOSAL_GENERATOR_REGISTRY,
    RPN,
    RPN_HEAD_REGISTRY,
    StandardRPNHead,
    build_proposal_generator,
    build_rpn_head,
)
from .roi_heads import (
    ROI_BOX_HEAD_REGISTRY,
    ROI_HEADS_REGISTRY,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    Res5ROIHeads,
    ROIHeads,
    StandardROIHeads,
    build_box_head,
    build_roi_heads,
)
from .sampling import subsample_labels

__all__ = [
    "ANCHOR_GENERATOR_REGISTRY",
    "BACKBONE_REGISTRY",
    "Backbone",
    "BasicBlock",
    "BasicStem",
    "BottleneckBlock",
    "Box2BoxTransform",
    "Box2BoxTransformLinear",
    "DefaultAnchorGenerator",
    "FPN",
    "FastRCNNConvFCHead",
    "FastRCNNOutputLayers",
    "GeneralizedRCNN",
    "META_ARCH_REGISTRY",
    "Matcher",
    "PROPOSAL_GENERATOR_REGISTRY",
    "ProposalNetwork",
    "RPN",
    "RPN_HEAD_REGISTRY",
    "ROIHeads",
    "Res5ROIHeads",
    "ROIPooler",
    "ROI_BOX_HEAD_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "ResNet",
    "ShapeSpec",
    "StandardROIHeads",
    "StandardRPNHead",
    "TinyBackbone",
    "build_anchor_generator",
    "build_backbone",
    "build_box_head",
    "build_model",
    "build_proposal_generator",
    "build_resnet_backbone",
    "build_resnet_fpn_backbone",
    "build_roi_heads",
    "build_rpn_head",
    "detector_postprocess",
    "make_stage",
    "resolve_device",
    "subsample_labels",
]
