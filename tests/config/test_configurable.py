"""@configurable: cfg-or-keywords construction, overrides, functions and wrong use."""
from __future__ import annotations

import pytest
from torch import nn

from d2lite.config import CfgNode, configurable, get_cfg


def _cfg(**values) -> CfgNode:
    cfg = get_cfg()
    for k, v in values.items():
        setattr(cfg, k, v)
    return cfg


class Head(nn.Module):
    @configurable
    def __init__(self, in_channels: int, num_classes: int, depth: int = 1):
        super().__init__()
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {"in_channels": input_shape, "num_classes": cfg.NUM}


def test_plain_call_and_cfg_call_give_the_same_object():
    plain = Head(in_channels=8, num_classes=3)
    from_cfg = Head(_cfg(NUM=3), 8)
    assert (plain.in_channels, plain.num_classes) == (from_cfg.in_channels, from_cfg.num_classes)
    assert Head(cfg=_cfg(NUM=3), input_shape=8).num_classes == 3


def test_keywords_override_what_from_config_returns():
    head = Head(_cfg(NUM=3), 8, num_classes=5, depth=2)
    assert (head.num_classes, head.depth) == (5, 2)


def test_unknown_keyword_with_cfg_is_a_type_error():
    with pytest.raises(TypeError):
        Head(_cfg(NUM=3), 8, not_an_arg=1)


class OldStyle(Head):
    """A user subclass written the pre-configurable way: __init__(cfg, input_shape)."""

    def __init__(self, cfg, input_shape):
        super().__init__(cfg, input_shape)
        self.extra = cfg.NUM * 10


class NewStyle(Head):
    @configurable
    def __init__(self, *, scale: int, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["scale"] = 7
        return ret


def test_both_styles_of_subclass_work():
    old = OldStyle(_cfg(NUM=4), 8)
    assert (old.num_classes, old.extra) == (4, 40)
    new = NewStyle(_cfg(NUM=4), 8)
    assert (new.num_classes, new.scale, new.in_channels) == (4, 7, 8)


class TakesAnything(Head):
    @classmethod
    def from_config(cls, cfg, input_shape, **kwargs):
        ret = {"in_channels": input_shape, "num_classes": cfg.NUM}
        ret.update(kwargs)
        return ret


def test_from_config_with_var_kwargs_gets_every_argument():
    assert TakesAnything(_cfg(NUM=1), 8, depth=3).depth == 3
    with pytest.raises(TypeError):
        TakesAnything(_cfg(NUM=1), 8, not_an_arg=1)


@configurable(from_config=lambda cfg, b: {"a": cfg.A, "b": b, "c": cfg.C})
def _func(a, b=2, c=3, d=4):
    return a, b, c, d


def test_function_with_from_config():
    assert _func(1) == (1, 2, 3, 4)
    cfg = _cfg(A=10, C=30)
    assert _func(cfg, b=2) == (10, 2, 30, 4)
    assert _func(cfg, a=100, b=20, d=40) == (100, 20, 30, 40)
    with pytest.raises(TypeError):
        _func(cfg)  # from_config needs b
    assert callable(_func.from_config)


def test_wrong_use_gives_detectron2s_errors():
    class NoFromConfig:
        @configurable
        def __init__(self, a=1):
            pass

    class NotAClassmethod:
        @configurable
        def __init__(self, a=1):
            pass

        def from_config(self, cfg):
            return {}

    class BadFirstArgument:
        @configurable
        def __init__(self, a=1):
            pass

        @classmethod
        def from_config(cls, config):
            return {}

    with pytest.raises(AttributeError, match="from_config"):
        NoFromConfig(a=1)
    with pytest.raises(TypeError, match="classmethod"):
        NotAClassmethod(a=1)
    with pytest.raises(TypeError, match="'cfg'"):
        BadFirstArgument(get_cfg())
    with pytest.raises(AssertionError):
        configurable(lambda: None)  # only __init__ may be decorated without from_config=
    assert configurable() is configurable
