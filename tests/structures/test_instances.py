from __future__ import annotations

import pickle

import pytest
import torch

from d2lite.structures import Boxes, Instances


def _make(n: int = 3) -> Instances:
    inst = Instances((20, 30))
    inst.gt_boxes = Boxes(torch.arange(4 * n, dtype=torch.float32).view(n, 4))
    inst.gt_classes = torch.arange(n, dtype=torch.int64)
    inst.set("names", [f"o{i}" for i in range(n)])
    return inst


def test_fields_access():
    inst = _make()
    assert inst.image_size == (20, 30)
    assert len(inst) == 3
    assert inst.has("gt_classes") and not inst.has("scores")
    assert inst.get("names")[1] == "o1"
    assert set(inst.get_fields()) == {"gt_boxes", "gt_classes", "names"}
    inst.remove("names")
    assert not inst.has("names")
    with pytest.raises(AttributeError, match="scores"):
        inst.scores
    with pytest.raises(AssertionError, match="length 2"):
        inst.scores = torch.zeros(2)
    kw = Instances((5, 6), scores=torch.ones(2))
    assert len(kw) == 2


def test_indexing():
    inst = _make()
    one = inst[1]
    assert len(one) == 1 and one.gt_classes.tolist() == [1] and one.names == ["o1"]
    assert one.gt_boxes.tensor.shape == (1, 4)
    assert inst[-1].gt_classes.tolist() == [2]
    with pytest.raises(IndexError):
        inst[3]
    inst.remove("names")  # plain lists cannot be indexed by masks, as in Detectron2
    masked = inst[torch.tensor([True, False, True])]
    assert masked.gt_classes.tolist() == [0, 2]
    assert len(inst[1:]) == 2
    assert inst[torch.tensor([2, 0])].gt_classes.tolist() == [2, 0]
    empty = inst[torch.zeros(3, dtype=torch.bool)]
    assert len(empty) == 0 and empty.gt_boxes.tensor.shape == (0, 4)


def test_cat_and_to():
    a, b = _make(2), _make(3)
    c = Instances.cat([a, b])
    assert len(c) == 5 and c.names[2] == "o0"
    assert c.gt_classes.tolist() == [0, 1, 0, 1, 2]
    assert isinstance(c.gt_boxes, Boxes)
    with pytest.raises(AssertionError, match="different image sizes"):
        Instances.cat([a, Instances((1, 1), gt_classes=torch.zeros(1))])
    moved = a.to("cpu")
    assert moved.gt_boxes.device == torch.device("cpu") and moved.names == a.names
    assert Instances.cat([a]) is a


def test_empty_instances_repr_and_iter():
    inst = Instances((4, 5))
    assert len(inst) == 0
    r = repr(_make(2))
    assert "num_instances=2" in r and "image_height=20" in r and "image_width=30" in r
    assert "num_instances=0" in repr(inst)
    with pytest.raises(TypeError):
        iter(_make())
    with pytest.raises(NotImplementedError, match="not iterable"):  # what Detectron2 raises
        iter(_make())


def test_pickle_roundtrip():
    inst = pickle.loads(pickle.dumps(_make()))
    assert inst.gt_classes.tolist() == [0, 1, 2]
