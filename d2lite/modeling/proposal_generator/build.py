"""The registry of proposal generators and its builder."""
from __future__ import annotations

from fvcore.common.registry import Registry
from torch import nn

from ...config import CfgNode
from ...layers import ShapeSpec

__all__ = ["PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator"]

PROPOSAL_GENERATOR_REGISTRY = Registry("PROPOSAL_GENERATOR")
PROPOSAL_GENERATOR_REGISTRY.__doc__ = """
Registry for proposal generators: called as ``cls(**cls.from_config(cfg, input_shape))`` (or
``obj(cfg, input_shape)`` without ``from_config``), ``input_shape`` the backbone output shapes.
"""


def build_proposal_generator(cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> nn.Module | None:
    """Builds ``cfg.MODEL.PROPOSAL_GENERATOR.NAME``; "PrecomputedProposals" returns None (the
    proposals come with the inputs)."""
    name = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    if name == "PrecomputedProposals":
        return None
    obj = PROPOSAL_GENERATOR_REGISTRY.get(name)
    if hasattr(obj, "from_config"):
        return obj(**obj.from_config(cfg, input_shape))
    return obj(cfg, input_shape)
