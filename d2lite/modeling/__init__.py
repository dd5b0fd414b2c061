"""Models: backbones, anchors, RPN, ROI heads and the meta-architectures that join them.

Importing this package registers every built-in backbone, head and meta-architecture. The
Detectron2 models d2lite leaves out (masks, keypoints, dense detectors, segmentation,
transformer backbones) import, and raise ``NotImplementedError`` when built.
"""
from types import ModuleType as _ModuleType

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
    MViT,
    ResNet,
    ResNetBlockBase,
    SimpleFeaturePyramid,
    SwinTransformer,
    ViT,
    build_backbone,
    build_resnet_backbone,
    build_resnet_fpn_backbone,
    get_vit_lr_decay_rate,
    make_stage,
)
from .backbone.tiny import TinyBackbone
from .box_regression import Box2BoxTransform
from .matcher import Matcher
from .meta_arch import (
    FCOS,
    META_ARCH_REGISTRY,
    SEM_SEG_HEADS_REGISTRY,
    GeneralizedRCNN,
    PanopticFPN,
    ProposalNetwork,
    RetinaNet,
    SemanticSegmentor,
    build_model,
    build_sem_seg_head,
    resolve_device,
)
from .mmdet_wrapper import MMDetBackbone, MMDetDetector
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
    ROI_KEYPOINT_HEAD_REGISTRY,
    ROI_MASK_HEAD_REGISTRY,
    BaseKeypointRCNNHead,
    BaseMaskRCNNHead,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    Res5ROIHeads,
    ROIHeads,
    StandardROIHeads,
    build_box_head,
    build_keypoint_head,
    build_mask_head,
    build_roi_heads,
)
from .sampling import subsample_labels
from .test_time_augmentation import DatasetMapperTTA, GeneralizedRCNNWithTTA

# The public names are everything imported above, less the submodules themselves.
__all__ = [
    n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _ModuleType)
]
