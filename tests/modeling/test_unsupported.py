"""The Detectron2 modeling names d2lite leaves out: they import, and raise when built."""
import pytest
from fvcore.common.registry import Registry
from torch import nn

from d2lite.config import get_cfg
from d2lite.modeling import (
    ANCHOR_GENERATOR_REGISTRY,
    BACKBONE_REGISTRY,
    FCOS,
    META_ARCH_REGISTRY,
    PROPOSAL_GENERATOR_REGISTRY,
    ROI_HEADS_REGISTRY,
    ROI_KEYPOINT_HEAD_REGISTRY,
    ROI_MASK_HEAD_REGISTRY,
    SEM_SEG_HEADS_REGISTRY,
    Backbone,
    BaseKeypointRCNNHead,
    BaseMaskRCNNHead,
    MMDetBackbone,
    MMDetDetector,
    MViT,
    PanopticFPN,
    RetinaNet,
    SemanticSegmentor,
    SimpleFeaturePyramid,
    StandardROIHeads,
    SwinTransformer,
    ViT,
    build_backbone,
    build_keypoint_head,
    build_mask_head,
    build_model,
    build_sem_seg_head,
    get_vit_lr_decay_rate,
)
from d2lite.modeling.anchor_generator import RotatedAnchorGenerator
from d2lite.modeling.backbone import RegNet, fpn
from d2lite.modeling.box_regression import Box2BoxTransformRotated
from d2lite.modeling.proposal_generator.rpn import RRPN
from d2lite.modeling.roi_heads import (
    CascadeROIHeads,
    FastRCNNOutputLayers,
    KRCNNConvDeconvUpsampleHead,
    MaskRCNNConvUpsampleHead,
    RROIHeads,
)
from d2lite.modeling.roi_heads.rotated_fast_rcnn import RotatedFastRCNNOutputLayers

LEFT_OUT_CLASSES = [
    (RotatedAnchorGenerator, nn.Module),
    (Box2BoxTransformRotated, object),
    (RRPN, nn.Module),
    (RotatedFastRCNNOutputLayers, FastRCNNOutputLayers),
    (RROIHeads, StandardROIHeads),
    (CascadeROIHeads, StandardROIHeads),
    (BaseMaskRCNNHead, nn.Module),
    (MaskRCNNConvUpsampleHead, BaseMaskRCNNHead),
    (BaseKeypointRCNNHead, nn.Module),
    (KRCNNConvDeconvUpsampleHead, BaseKeypointRCNNHead),
    (RetinaNet, nn.Module),
    (FCOS, nn.Module),
    (PanopticFPN, nn.Module),
    (SemanticSegmentor, nn.Module),
    (ViT, Backbone),
    (MViT, Backbone),
    (SwinTransformer, Backbone),
    (SimpleFeaturePyramid, Backbone),
    (RegNet, Backbone),
    (MMDetBackbone, Backbone),
    (MMDetDetector, nn.Module),
]

_IDS = [cls.__name__ for cls, _ in LEFT_OUT_CLASSES]


@pytest.mark.parametrize("cls,base", LEFT_OUT_CLASSES, ids=_IDS)
def test_left_out_classes_import_subclass_and_raise(cls, base):
    # Detectron2's base classes, so isinstance checks in user code give the same answer.
    assert issubclass(cls, base)
    with pytest.raises(NotImplementedError, match=f"{cls.__name__}.*d2lite covers"):
        cls(get_cfg(), {})


@pytest.mark.parametrize(
    "func", [build_mask_head, build_keypoint_head, build_sem_seg_head, get_vit_lr_decay_rate]
)
def test_left_out_functions_raise(func):
    with pytest.raises(NotImplementedError, match=func.__name__):
        func(get_cfg(), None)


def test_left_out_names_are_registered_where_a_config_names_them():
    assert ANCHOR_GENERATOR_REGISTRY.get("RotatedAnchorGenerator") is RotatedAnchorGenerator
    assert PROPOSAL_GENERATOR_REGISTRY.get("RRPN") is RRPN
    assert ROI_HEADS_REGISTRY.get("RROIHeads") is RROIHeads
    assert ROI_HEADS_REGISTRY.get("CascadeROIHeads") is CascadeROIHeads
    for name in ("RetinaNet", "FCOS", "PanopticFPN", "SemanticSegmentor"):
        assert META_ARCH_REGISTRY.get(name).__name__ == name
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "RetinaNet"
    with pytest.raises(NotImplementedError, match="RetinaNet .one-stage dense detectors"):
        build_model(cfg)


def test_retinanet_fpn_backbone_imports_from_detectron2_path_and_refuses_to_build():
    assert BACKBONE_REGISTRY.get("build_retinanet_resnet_fpn_backbone") is (
        fpn.build_retinanet_resnet_fpn_backbone
    )
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_retinanet_resnet_fpn_backbone"
    with pytest.raises(NotImplementedError, match="build_retinanet_resnet_fpn_backbone"):
        build_backbone(cfg)
    with pytest.raises(NotImplementedError, match="LastLevelP6P7"):
        fpn.LastLevelP6P7(2048, 256)


def test_left_out_head_registries_are_real_and_empty():
    # fvcore registries, so that user code registering its own heads still imports.
    for registry in (ROI_MASK_HEAD_REGISTRY, ROI_KEYPOINT_HEAD_REGISTRY, SEM_SEG_HEADS_REGISTRY):
        assert isinstance(registry, Registry) and len(list(registry)) == 0
