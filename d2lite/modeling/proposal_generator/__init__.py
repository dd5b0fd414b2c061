"""Proposal generators (the RPN) and their registries."""
from types import ModuleType as _ModuleType

from .build import PROPOSAL_GENERATOR_REGISTRY, build_proposal_generator
from .proposal_utils import add_ground_truth_to_proposals, find_top_rpn_proposals
from .rpn import RPN, RPN_HEAD_REGISTRY, StandardRPNHead, build_rpn_head

# The public names are everything imported above, less the submodules themselves.
__all__ = [
    n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _ModuleType)
]
