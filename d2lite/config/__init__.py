"""d2lite's config system: ``get_cfg()``, ``CfgNode`` and ``@configurable``.

LazyConfig (Python configs, ``instantiate``, ``LazyCall``) is not part of d2lite: the names
import, and using them raises ``NotImplementedError``.
"""
from ..utils.unsupported import unsupported_class, unsupported_function
from .compat import downgrade_config, upgrade_config
from .config import (
    STRICT_ENV,
    CfgNode,
    check_cfg_keys,
    find_unknown_keys,
    get_cfg,
    global_cfg,
    set_global_cfg,
)
from .configurable import configurable

LazyConfig = unsupported_class("LazyConfig", "Python LazyConfig files", __name__)
LazyCall = unsupported_class("LazyCall", "Python LazyConfig files", __name__)
instantiate = unsupported_function("instantiate", "Python LazyConfig files", __name__)

__all__ = [
    "CfgNode",
    "get_cfg",
    "global_cfg",
    "set_global_cfg",
    "downgrade_config",
    "upgrade_config",
    "configurable",
    "find_unknown_keys",
    "check_cfg_keys",
    "STRICT_ENV",
    "LazyConfig",
    "LazyCall",
    "instantiate",
]
