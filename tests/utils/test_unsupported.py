"""d2lite.utils.unsupported: Detectron2 names outside d2lite's scope import and refuse use."""
from __future__ import annotations

import pytest

from d2lite.utils.unsupported import SCOPE, unsupported_class, unsupported_function


class Base:
    pass


def test_class_can_be_subclassed_and_checked_but_not_built():
    cls = unsupported_class("RotatedThing", "rotated boxes", "d2lite.somewhere", bases=(Base,))
    assert cls.__name__ == "RotatedThing" and cls.__module__ == "d2lite.somewhere"
    assert issubclass(cls, Base) and not isinstance(Base(), cls)

    class UserSubclass(cls):  # a script may subclass at import time
        pass

    with pytest.raises(NotImplementedError, match=r"RotatedThing \(rotated boxes\)"):
        cls(1, key=2)
    with pytest.raises(NotImplementedError, match="RotatedThing"):
        UserSubclass()


def test_function_raises_naming_itself_and_the_scope():
    func = unsupported_function("paste_masks", "masks", "d2lite.layers")
    assert func.__name__ == "paste_masks"
    with pytest.raises(NotImplementedError) as err:
        func(1, 2)
    assert "paste_masks (masks)" in str(err.value) and SCOPE in str(err.value)


def test_an_abstract_base_does_not_hide_the_message():
    import abc

    class AbstractBase(abc.ABC):
        @abc.abstractmethod
        def forward(self):
            ...

    cls = unsupported_class("ViTLike", "transformer backbones", __name__, bases=(AbstractBase,))
    with pytest.raises(NotImplementedError, match="ViTLike"):
        cls()
