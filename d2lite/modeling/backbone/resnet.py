"""ResNet / ResNeXt backbones with Detectron2's module names (``stem``, ``res2`` .. ``res5``).

N: images in the batch, C: channels, H, W: input size. The stem outputs (N, 64, H/4, W/4) and
stage ``res{k}`` outputs stride 2**k: res2 H/4, res3 H/8, res4 H/16, res5 H/32 (H/16 with
``RES5_DILATION: 2``).
"""
from __future__ import annotations

import logging
import math

import torch.nn.functional as F
from torch import Tensor, nn

from ...layers import CNNBlockBase, Conv2d, ShapeSpec, get_norm
from ...layers.weight_init import c2_msra_fill
from ..registry import BACKBONE_REGISTRY
from .backbone import Backbone

__all__ = [
    "BasicBlock",
    "BasicStem",
    "BottleneckBlock",
    "ResNet",
    "ResNetBlockBase",
    "build_resnet_backbone",
    "make_stage",
]

logger = logging.getLogger(__name__)

_BLOCKS_PER_STAGE = {
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
}
_STAGE_INDEX = {"res2": 2, "res3": 3, "res4": 4, "res5": 5}

# Detectron2's older name for the block base class, still used by user blocks.
ResNetBlockBase = CNNBlockBase


def _shortcut(in_channels: int, out_channels: int, stride: int, norm) -> Conv2d | None:
    """The 1x1 projection of a block whose channels change; None (the identity) otherwise."""
    if in_channels == out_channels:
        return None
    return Conv2d(
        in_channels, out_channels, 1, stride=stride, bias=False, norm=get_norm(norm, out_channels)
    )


class BasicBlock(CNNBlockBase):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut, for ResNet-18/34.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): stride of the first conv. Defaults to 1.
        norm (str | Callable): see :func:`get_norm`. Defaults to "BN".
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm="BN") -> None:
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        self.conv1 = Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
            norm=get_norm(norm, out_channels),
        )
        self.conv2 = Conv2d(
            out_channels, out_channels, 3, stride=1, padding=1, bias=False,
            norm=get_norm(norm, out_channels),
        )
        # Detectron2's init order (shortcut last), so a seed gives Detectron2's initial weights.
        for layer in (self.conv1, self.conv2, self.shortcut):
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(self.conv1(x))
        out = self.conv2(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out + shortcut)


class BottleneckBlock(CNNBlockBase):
    """1x1 reduce, 3x3 (grouped, dilated), 1x1 expand, plus a shortcut: ResNet-50+ and ResNeXt.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        bottleneck_channels (int): channels of the 3x3 conv.
        stride (int): downsampling of the block. Defaults to 1.
        num_groups (int): groups of the 3x3 conv (ResNeXt cardinality). Defaults to 1.
        norm (str | Callable): see :func:`get_norm`. Defaults to "BN".
        stride_in_1x1 (bool): put the stride in the first 1x1 conv (MSRA/Caffe2 weights) rather
            than in the 3x3 conv (torchvision weights). Defaults to False.
        dilation (int): dilation of the 3x3 conv. Defaults to 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bottleneck_channels: int,
        stride: int = 1,
        num_groups: int = 1,
        norm="BN",
        stride_in_1x1: bool = False,
        dilation: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(
            in_channels, bottleneck_channels, 1, stride=stride_1x1, bias=False,
            norm=get_norm(norm, bottleneck_channels),
        )
        self.conv2 = Conv2d(
            bottleneck_channels, bottleneck_channels, 3, stride=stride_3x3, padding=dilation,
            bias=False, groups=num_groups, dilation=dilation,
            norm=get_norm(norm, bottleneck_channels),
        )
        self.conv3 = Conv2d(
            bottleneck_channels, out_channels, 1, bias=False, norm=get_norm(norm, out_channels)
        )
        # Detectron2's init order (shortcut last), so a seed gives Detectron2's initial weights.
        for layer in (self.conv1, self.conv2, self.conv3, self.shortcut):
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out + shortcut)


class BasicStem(CNNBlockBase):
    """7x7 stride-2 conv + norm + ReLU + 3x3 stride-2 max pool: (N, C, H, W) -> (N, 64, H/4, W/4).

    Args:
        in_channels (int): image channels. Defaults to 3.
        out_channels (int): output channels. Defaults to 64.
        norm (str | Callable): see :func:`get_norm`. Defaults to "BN".
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm="BN") -> None:
        super().__init__(in_channels, out_channels, 4)
        self.conv1 = Conv2d(
            in_channels, out_channels, 7, stride=2, padding=3, bias=False,
            norm=get_norm(norm, out_channels),
        )
        c2_msra_fill(self.conv1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ResNet(Backbone):
    """A stem followed by stages ``res2``, ``res3``, ... of blocks, optionally a classifier.

    Args:
        stem (CNNBlockBase): the stem, e.g. :class:`BasicStem`.
        stages (list[list[CNNBlockBase]]): blocks of each stage; stage i is named ``res{i+2}``.
        num_classes (int | None): adds global pooling and a ``linear`` classifier when set.
            Defaults to None.
        out_features (list[str] | None): outputs among "stem", "res2", ..., "linear"; stages
            after the last requested one are not built. Defaults to the last layer.
        freeze_at (int): see :meth:`freeze`. Defaults to 0.
    """

    def __init__(
        self,
        stem: CNNBlockBase,
        stages: list[list[CNNBlockBase]],
        *,
        num_classes: int | None = None,
        out_features: list[str] | None = None,
        freeze_at: int = 0,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.num_classes = num_classes
        stride = stem.stride
        self._out_feature_strides = {"stem": stride}
        self._out_feature_channels = {"stem": stem.out_channels}
        if out_features is not None and "linear" not in out_features:
            # Stages past the deepest requested output would be dead weight (and unused params).
            stages = stages[: max(_STAGE_INDEX.get(f, 1) - 1 for f in out_features)]
        self.stage_names, self.stages = [], []
        for i, blocks in enumerate(stages):
            assert len(blocks) > 0, f"stage {i + 2} has no blocks"
            name = f"res{i + 2}"
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stages.append(stage)
            stride *= math.prod(block.stride for block in blocks)
            self._out_feature_strides[name] = stride
            self._out_feature_channels[name] = blocks[-1].out_channels
        self.stage_names = tuple(self.stage_names)
        name = self.stage_names[-1] if self.stage_names else "stem"
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.linear = nn.Linear(self._out_feature_channels[name], num_classes)
            nn.init.normal_(self.linear.weight, std=0.01)
            name = "linear"
        self._out_features = list(out_features) if out_features is not None else [name]
        children = {n for n, _ in self.named_children()}
        for feature in self._out_features:
            if feature not in children:
                raise ValueError(
                    f"ResNet out_features has {feature!r}; available: {sorted(children)}"
                )
        self.freeze(freeze_at)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Maps images ``x (Tensor[N, C, H, W])`` to ``{name: Tensor[N, Ci, Hi, Wi]}``."""
        assert x.dim() == 4, f"ResNet takes an (N, C, H, W) input, got shape {tuple(x.shape)}"
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        if self.num_classes is not None:
            x = self.linear(self.avgpool(x).flatten(1))
            if "linear" in self._out_features:
                outputs["linear"] = x
        return outputs

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
            if name != "linear"
        }

    def freeze(self, freeze_at: int = 0) -> "ResNet":
        """Freezes the first ``freeze_at`` blocks: 1 = the stem, 2 = stem and res2, and so on.

        Frozen blocks get ``requires_grad=False`` and their batch norms become
        ``FrozenBatchNorm2d``; 0 freezes nothing.

        Returns:
            ResNet: the model itself.
        """
        if freeze_at >= 1:
            self.stem.freeze()
        for idx, stage in enumerate(self.stages, start=2):
            if freeze_at >= idx:
                for block in stage.children():
                    block.freeze()
        return self

    @staticmethod
    def make_stage(
        block_class: type, num_blocks: int, *, in_channels: int, out_channels: int, **kwargs
    ) -> list[CNNBlockBase]:
        """Builds ``num_blocks`` blocks of one stage.

        Args:
            block_class (type): a :class:`CNNBlockBase` subclass taking ``in_channels``,
                ``out_channels`` and ``kwargs``.
            num_blocks (int): blocks in the stage.
            in_channels (int): input channels of the first block (later ones get out_channels).
            out_channels (int): output channels of every block.
            kwargs: passed to every block; a key ``<arg>_per_block`` must be a list of
                ``num_blocks`` values, giving ``<arg>`` block by block (e.g. ``stride_per_block``).
        """
        for key, value in kwargs.items():
            if key.endswith("_per_block") and len(value) != num_blocks:
                raise ValueError(f"{key} has {len(value)} values for {num_blocks} blocks")
        blocks = []
        for i in range(num_blocks):
            block_kwargs = {
                k.removesuffix("_per_block"): v[i] if k.endswith("_per_block") else v
                for k, v in kwargs.items()
            }
            blocks.append(
                block_class(in_channels=in_channels, out_channels=out_channels, **block_kwargs)
            )
            in_channels = out_channels
        return blocks

    @staticmethod
    def make_default_stages(depth: int, block_class: type | None = None, **kwargs) -> list:
        """Builds the 4 stages of a standard ResNet of ``depth`` (18, 34, 50, 101 or 152).

        Args:
            depth (int): network depth.
            block_class (type | None): defaults to BasicBlock below 50, else BottleneckBlock.
            kwargs: passed to every block (e.g. ``norm``, ``stride_in_1x1``).
        """
        if depth not in _BLOCKS_PER_STAGE:
            raise ValueError(
                f"ResNet depth must be one of {sorted(_BLOCKS_PER_STAGE)}, got {depth}"
            )
        if depth < 50:
            return _make_stages(block_class or BasicBlock, depth, 64, 64, **kwargs)
        kwargs["bottleneck_channels"] = 64
        return _make_stages(block_class or BottleneckBlock, depth, 64, 256, **kwargs)


make_stage = ResNet.make_stage


def _make_stages(
    block_class: type, depth: int, in_channels: int, out_channels: int, res5_dilation: int = 1,
    **kwargs,
) -> list[list[CNNBlockBase]]:
    """The 4 stages res2..res5 of a ResNet of ``depth``, from ``in_channels`` (the stem's).

    res2 has ``out_channels`` and each later stage twice as many; ``bottleneck_channels``, when
    given, doubles likewise. The first block of res3..res5 downsamples by 2, except in a
    dilated res5 (``res5_dilation`` 2), which keeps res4's resolution. ``kwargs`` go to every
    block.
    """
    bottleneck_channels = kwargs.pop("bottleneck_channels", None)
    stages = []
    for idx, num_blocks in enumerate(_BLOCKS_PER_STAGE[depth]):
        dilated = idx == 3 and res5_dilation != 1
        if bottleneck_channels is not None:
            kwargs["bottleneck_channels"] = bottleneck_channels * 2**idx
        if dilated:
            kwargs["dilation"] = res5_dilation
        first_stride = 1 if idx == 0 or dilated else 2
        stages.append(
            ResNet.make_stage(
                block_class, num_blocks, stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                in_channels=in_channels, out_channels=out_channels, **kwargs,
            )
        )
        in_channels, out_channels = out_channels, out_channels * 2
    return stages


def _check_resnet_cfg(cfg) -> None:
    """Raises a ValueError naming the MODEL.RESNETS key that d2lite cannot build."""
    res = cfg.MODEL.RESNETS
    if res.DEPTH not in _BLOCKS_PER_STAGE:
        raise ValueError(
            f"MODEL.RESNETS.DEPTH must be one of {sorted(_BLOCKS_PER_STAGE)}, got {res.DEPTH}"
        )
    if any(res.DEFORM_ON_PER_STAGE):
        raise ValueError("MODEL.RESNETS.DEFORM_ON_PER_STAGE: deformable convs are not supported")
    if res.RES5_DILATION not in (1, 2):
        raise ValueError(f"MODEL.RESNETS.RES5_DILATION must be 1 or 2, got {res.RES5_DILATION}")
    for feature in res.OUT_FEATURES:
        if feature not in _STAGE_INDEX and feature != "stem":
            raise ValueError(f"MODEL.RESNETS.OUT_FEATURES has unknown feature {feature!r}")
    if res.DEPTH in (18, 34):
        if res.RES2_OUT_CHANNELS != 64:
            raise ValueError(
                f"MODEL.RESNETS.RES2_OUT_CHANNELS must be 64 for R{res.DEPTH}, "
                f"got {res.RES2_OUT_CHANNELS}"
            )
        if res.RES5_DILATION != 1 or res.NUM_GROUPS != 1:
            raise ValueError(
                f"R{res.DEPTH} supports neither MODEL.RESNETS.RES5_DILATION != 1 "
                "nor MODEL.RESNETS.NUM_GROUPS != 1"
            )


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """Builds the ResNet described by ``cfg.MODEL.RESNETS`` and ``cfg.MODEL.BACKBONE.FREEZE_AT``.

    Args:
        cfg (CfgNode): the config.
        input_shape (ShapeSpec): ``channels`` is the number of image channels.
    """
    _check_resnet_cfg(cfg)
    res = cfg.MODEL.RESNETS
    stem = BasicStem(input_shape.channels, res.STEM_OUT_CHANNELS, norm=res.NORM)
    block_class, kwargs = BasicBlock, {"norm": res.NORM}
    if res.DEPTH >= 50:
        block_class = BottleneckBlock
        kwargs.update(
            bottleneck_channels=res.NUM_GROUPS * res.WIDTH_PER_GROUP,
            stride_in_1x1=res.STRIDE_IN_1X1, num_groups=res.NUM_GROUPS,
        )
    # All four stages are built, and ResNet drops those past OUT_FEATURES, as in Detectron2:
    # the unused stages draw from the RNG, so a seed gives Detectron2's initial weights after.
    stages = _make_stages(
        block_class, res.DEPTH, res.STEM_OUT_CHANNELS, res.RES2_OUT_CHANNELS,
        res5_dilation=res.RES5_DILATION, **kwargs,
    )
    return ResNet(
        stem, stages, out_features=res.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT
    )
