"""``build_proposal_generator`` and the registry it reads."""
from __future__ import annotations

from torch import nn

from ...config import CfgNode
from ...layers import ShapeSpec
from ..registry import PROPOSAL_GENERATOR_REGISTRY, build_registered

__all__ = ["PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator"]


def build_proposal_generator(cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> nn.Module | None:
    """Builds ``cfg.MODEL.PROPOSAL_GENERATOR.NAME``; "PrecomputedProposals" returns None (the
    proposals come with the inputs)."""
    name = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    if name == "PrecomputedProposals":
        return None
    return build_registered(PROPOSAL_GENERATOR_REGISTRY, name, cfg, input_shape)
