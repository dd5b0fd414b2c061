"""The registry of proposal generators and its builder."""
from __future__ import annotations

from fvcore.common.registry import Registry
from torch import nn

from ...config import CfgNode
from ...layers import ShapeSpec

__all__ = ["PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator"]

PROPOSAL_GENERATOR_REGISTRY = Registry("PROPOSAL_GENERATOR")
PROPOSAL_GENERATOR_REGISTRY.__doc__ = """
Registry for proposal generators: a registered object is called as ``obj(cfg, input_shape)``,
``input_shape`` the backbone output shapes.
"""


def build_proposal_generator(cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> nn.Module | None:
    """Builds ``cfg.MODEL.PROPOSAL_GENERATOR.NAME``; "PrecomputedProposals" returns None (the
    proposals come with the inputs)."""
    name = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    if name == "PrecomputedProposals":
        return None
    return PROPOSAL_GENERATOR_REGISTRY.get(name)(cfg, input_shape)
