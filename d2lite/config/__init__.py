"""d2lite's config system: ``get_cfg()`` and ``CfgNode``."""
from .config import CfgNode, check_cfg_keys, find_unknown_keys, get_cfg, global_cfg, set_global_cfg

__all__ = ["CfgNode", "get_cfg", "global_cfg", "set_global_cfg", "find_unknown_keys", "check_cfg_keys"]
