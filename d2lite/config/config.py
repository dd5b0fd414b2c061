"""The config system: a yacs/fvcore ``CfgNode`` with friendlier errors.

``get_cfg()`` returns a fresh copy of the defaults in :mod:`d2lite.config.defaults`.
YAML files only override keys that exist there. ``_BASE_`` may name one file or a list of
files (merged in order) relative to the file that names them; cycles are reported.
"""
from __future__ import annotations

import copy
import difflib
import logging
import os
from typing import Any

import yaml
from fvcore.common.config import CfgNode as _FvCfgNode

from .compat import LATEST, downgrade_config, guess_version, upgrade_config

__all__ = [
    "CfgNode",
    "get_cfg",
    "set_global_cfg",
    "global_cfg",
    "find_unknown_keys",
    "check_cfg_keys",
    "STRICT_ENV",
]

logger = logging.getLogger(__name__)

BASE_KEY = "_BASE_"


def _flat_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, dict):
            keys.extend(_flat_keys(v, full + "."))
    return keys


def _suggest(key: str, candidates: list[str], n: int = 3) -> str:
    """Returns ' Did you mean A, B?' for the keys closest to ``key``, or ''."""
    scored = [(difflib.SequenceMatcher(None, key, c).ratio(), c) for c in candidates]
    scored = sorted((s for s in scored if s[0] >= 0.6), reverse=True)
    # Only the keys about as close as the closest: a clear typo gets one suggestion.
    close = [c for r, c in scored[:n] if r >= scored[0][0] - 0.1] if scored else []
    if not close:
        leaf = key.rsplit(".", 1)[-1]
        close = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf][:n]
    return f" Did you mean {', '.join(close)}?" if close else ""


def _coerce(key: str, new: Any, old: Any, source: str) -> Any:
    """Checks ``new`` against the type of the default ``old``; returns the value to store."""
    if old is None or new is None:
        return new
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        inner = {type(x) for x in old}
        if len(inner) == 1 and inner <= {list, tuple}:  # YAML reads nested tuples as lists
            (kind,) = inner
            new = [kind(x) if isinstance(x, (list, tuple)) else x for x in new]
        return type(old)(new)
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    if isinstance(old, bool) != isinstance(new, bool) or not isinstance(new, type(old)):
        raise ValueError(
            f"Config key {key} (from {source}) expects {type(old).__name__} "
            f"(default {old!r}) but got {type(new).__name__} {new!r}."
        )
    return new


class CfgNode(_FvCfgNode):
    """A config node: attribute access to nested keys, YAML merge with ``_BASE_``.

    Differences from a plain yacs node, all about errors: an unknown key names the key, its
    source and the closest valid keys; a wrong type names key, expected and given type;
    ``_BASE_`` cycles are reported; Python config files are refused (never executed).
    """

    @classmethod
    def load_yaml_with_base(
        cls, filename: str, allow_unsafe: bool = False, _stack: tuple[str, ...] = ()
    ) -> dict:
        """Loads a YAML file and the files its ``_BASE_`` names (a string or a list).

        Args:
            filename (str): path to a ``.yaml`` file.
            allow_unsafe (bool): ignored; YAML is always read with ``yaml.safe_load``.

        Returns:
            dict: the merged content, bases first, this file last.
        """
        if filename.endswith(".py"):
            raise ValueError(
                f"{filename}: d2lite reads YAML configs only; Python configs are never executed."
            )
        real = os.path.realpath(filename)
        if real in _stack:
            chain = " -> ".join(list(_stack) + [real])
            raise ValueError(f"Cycle in {BASE_KEY} includes: {chain}")
        if not os.path.isfile(filename):
            where = f" (named in {_stack[-1]})" if _stack else ""
            raise FileNotFoundError(f"Config file {filename}{where} does not exist.")
        with open(filename) as f:
            try:
                cfg = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ValueError(f"{filename} is not valid YAML: {e}") from e
        if not isinstance(cfg, dict):
            raise ValueError(f"{filename} must hold a mapping of config keys, not {type(cfg)}.")
        bases = cfg.pop(BASE_KEY, None)
        if bases is None:
            return cfg
        merged: dict = {}
        for base in [bases] if isinstance(bases, str) else list(bases):
            # An absolute base stays as it is: os.path.join drops what comes before it.
            base = os.path.join(os.path.dirname(filename), os.path.expanduser(base))
            _merge_dicts(cls.load_yaml_with_base(base, _stack=_stack + (real,)), merged)
        _merge_dicts(cfg, merged)
        return merged

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = True) -> None:
        """Merges a YAML file (and its ``_BASE_`` chain) into this config.

        A file of an older config version (``VERSION: 0`` or 1, or a file with v1-only keys
        such as ``MODEL.WEIGHT``) is read through Detectron2's renames, as Detectron2 does.
        """
        loaded = self.load_yaml_with_base(cfg_filename)
        version = loaded.get("VERSION")
        if version is None:
            version = guess_version(loaded, cfg_filename)
        if version >= LATEST or self.get("VERSION") != LATEST:
            self._merge_dict(loaded, source=cfg_filename)
            return
        logger.warning(f"{cfg_filename} is a v{version} config; upgrading it to v{LATEST}.")
        old = downgrade_config(self, to_version=version)
        old._merge_dict(loaded, source=cfg_filename)
        new = upgrade_config(old)
        self.clear()
        self.update(new)

    def merge_from_other_cfg(self, cfg_other: _FvCfgNode) -> None:
        """Merges another config node into this one."""
        self._merge_dict(cfg_other, source="another CfgNode")

    def merge_from_list(self, cfg_list: list) -> None:
        """Merges ``["KEY.A", "value", ...]`` pairs, values parsed as Python literals."""
        if len(cfg_list) % 2 != 0:
            raise ValueError(f"Override list must hold KEY VALUE pairs, got odd length: {cfg_list}")
        updates: dict = {}
        for full_key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            node = updates
            parts = full_key.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = self._decode_cfg_value(value)
        self._merge_dict(updates, source="command-line overrides")

    def _merge_dict(self, new: dict, source: str) -> None:
        if self.is_frozen():
            raise AttributeError("Cannot merge into a frozen config; call cfg.defrost() first.")
        self._merge_into(new, self, "", source, _flat_keys(self))

    @classmethod
    def _merge_into(cls, new: dict, node: "CfgNode", prefix: str, source: str, all_keys):
        for k, v in new.items():
            full = f"{prefix}{k}"
            # Dicts become nodes and strings Python literals; a node is merged as it is.
            v = v if isinstance(v, _FvCfgNode) else cls._decode_cfg_value(v)
            if k not in node:
                if node.is_new_allowed():
                    node[k] = v
                    continue
                raise KeyError(
                    f"Non-existent config key: {full} (in {source}).{_suggest(full, all_keys)}"
                )
            old = node[k]
            if isinstance(old, _FvCfgNode):
                if not isinstance(v, dict):
                    raise ValueError(f"Config key {full} (from {source}) is a group, got {v!r}.")
                cls._merge_into(v, old, full + ".", source, all_keys)
            else:
                node[k] = _coerce(full, v, old, source)


def _merge_dicts(a: dict, b: dict) -> None:
    """Recursively merges dict ``a`` into dict ``b`` (in place)."""
    for k, v in a.items():
        if isinstance(v, dict) and isinstance(b.get(k), dict):
            _merge_dicts(v, b[k])
        else:
            b[k] = v


def find_unknown_keys(cfg: CfgNode, reference: CfgNode | None = None) -> list[str]:
    """Lists keys of ``cfg`` that the defaults do not hold (typically set by attribute)."""
    known = set(_flat_keys(reference if reference is not None else get_cfg()))
    return [k for k in _flat_keys(cfg) if k not in known]


STRICT_ENV = "D2LITE_STRICT_CONFIG"


def _strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _wrong_types(cfg: CfgNode, reference: CfgNode, prefix: str = "") -> list[str]:
    """Keys whose default is a number but whose value is not one (``MAX_ITER = "10"``).

    Only numbers are checked: everywhere else Detectron2 accepts more than its default's type
    (an int for ``INPUT.MIN_SIZE_TRAIN``, a str for ``DATASETS.TRAIN``), and so does d2lite.
    """
    bad = []
    for key, default in reference.items():
        if key not in cfg:
            continue
        value = cfg[key]
        if isinstance(default, dict):
            if isinstance(value, dict):
                bad.extend(_wrong_types(value, default, f"{prefix}{key}."))
            continue
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and not isinstance(value, (int, float)):
            bad.append(
                f"{prefix}{key} must be a number (default {default!r}) but holds "
                f"{type(value).__name__} {value!r}"
            )
    return bad


def check_cfg_keys(cfg: CfgNode, strict: bool | None = None) -> list[str]:
    """Checks a config before it is used; the trainer and ``DefaultPredictor`` call it.

    Keys that are not in the defaults (a typo set by attribute, ``cfg.SOLVER.BASR_LR = 0.1``,
    or a project's own keys) are named in one warning, each with the closest valid keys, and
    the run goes on, as it does in Detectron2. With ``strict`` (or the environment variable
    ``D2LITE_STRICT_CONFIG=1``) a key that looks like a typo of a known key is an error instead.
    A number key that holds something else (``cfg.SOLVER.MAX_ITER = "10"``) is always an error:
    Detectron2 would fail on it later, inside the run.

    Args:
        cfg (CfgNode): the config to check.
        strict (bool | None): refuse typo-like unknown keys. Defaults to None (read
            ``D2LITE_STRICT_CONFIG``).

    Returns:
        list[str]: the unknown keys.

    Raises:
        KeyError: in strict mode, if an unknown key looks like a typo of a known key.
        ValueError: if a number key holds a value that is not a number.
    """
    strict = _strict_from_env() if strict is None else strict
    reference = get_cfg()
    known = _flat_keys(reference)
    unknown = find_unknown_keys(cfg, reference)
    typos, extras = [], []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=2, cutoff=0.85)
        (typos if close else extras).append(f"{key}{_suggest(key, known) if close else ''}")
    if typos and strict:
        raise KeyError("Config keys that are not in the defaults: " + "; ".join(typos))
    if typos:
        logger.warning(
            "Config keys that are not in the defaults, probably typos, have NO effect: "
            + "; ".join(typos)
            + f" (set {STRICT_ENV}=1, or call check_cfg_keys(cfg, strict=True), to refuse them)"
        )
    if extras:
        logger.warning("Config keys not in d2lite's defaults (kept as they are): %s", extras)
    wrong = _wrong_types(cfg, reference)
    if wrong:
        raise ValueError("Config values of the wrong type: " + "; ".join(wrong))
    return unknown


global_cfg = CfgNode()


def get_cfg() -> CfgNode:
    """Returns a fresh copy of the default config."""
    from .defaults import _C

    return _C.clone()


def set_global_cfg(cfg: CfgNode) -> None:
    """Replaces the content of ``global_cfg`` with ``cfg`` (Detectron2's hack for research)."""
    global_cfg.clear()
    global_cfg.update(copy.deepcopy(cfg))
