from __future__ import annotations

import itertools
import pickle
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.utils.data as torchdata

from d2lite.data import common
from d2lite.data.common import (
    AspectRatioGroupedDataset,
    DatasetFromList,
    MapDataset,
    ToIterableDataset,
    set_default_dataset_from_list_serialize_method,
)
from d2lite.data.samplers import InferenceSampler, TrainingSampler


def _records():
    return [{"id": i, "boxes": [[i, i, i + 1, i + 1]]} for i in range(4)]


def test_dataset_from_list_serialized_by_default_returns_fresh_copies():
    records = _records()
    ds = DatasetFromList(records)
    assert len(ds) == 4 and ds[2] == records[2]
    assert isinstance(ds._lst, common._TorchSerializedList)
    ds[2]["boxes"].append("edited")
    assert ds[2] == records[2]  # each access unpickles a new object
    assert pickle.loads(pickle.dumps(ds))[3] == records[3]


def test_dataset_from_list_unserialized_copy_flag():
    records = _records()
    copied = DatasetFromList(records, serialize=False)
    assert copied[1] == records[1] and copied[1] is not records[1]
    shared = DatasetFromList(records, copy=False, serialize=False)
    assert shared[1] is records[1]
    # A callable is the storage method; what it stores is returned as is, without a copy.
    as_tuple = DatasetFromList(records, serialize=tuple)
    assert isinstance(as_tuple._lst, tuple) and as_tuple[1] is records[1]
    with pytest.raises(TypeError, match="serialize"):
        DatasetFromList(records, serialize="yes")


def test_default_serialize_method_is_switched_for_a_block_only():
    with set_default_dataset_from_list_serialize_method(lambda lst: [x * 10 for x in lst]):
        assert DatasetFromList([1, 2], serialize=True)[1] == 20
        assert DatasetFromList([1, 2], serialize=False)[1] == 2
    assert DatasetFromList([1, 2])[1] == 2
    with pytest.raises(KeyError):
        with set_default_dataset_from_list_serialize_method(tuple):
            raise KeyError("inside")
    assert common._DEFAULT_DATASET_FROM_LIST_SERIALIZE_METHOD is common._TorchSerializedList


def _drop_odd(x):
    return None if x % 2 else x


def test_map_dataset_retries_another_element_on_none():
    ds = MapDataset(DatasetFromList([0, 1, 2, 3]), _drop_odd)
    assert ds[0] == 0 and ds[2] == 2
    assert all(ds[1] in (0, 2) for _ in range(5))
    with pytest.raises(RuntimeError, match="None for every element"):
        MapDataset(DatasetFromList([1, 3]), _drop_odd)[0]


def test_map_dataset_over_an_iterable_skips_none():
    class Stream(torchdata.IterableDataset):
        def __iter__(self):
            yield from range(5)

    ds = MapDataset(Stream(), _drop_odd)
    assert isinstance(ds, torchdata.IterableDataset)
    assert list(ds) == [0, 2, 4]


def test_map_dataset_with_a_lambda_pickles_twice():
    offset = 7
    ds = MapDataset(DatasetFromList([1, 2]), lambda x: x + offset)
    restored = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(ds))))
    assert isinstance(restored, MapDataset) and restored[1] == 9


def _as_worker(monkeypatch, worker_id, num_workers):
    info = SimpleNamespace(id=worker_id, num_workers=num_workers)
    monkeypatch.setattr(common.data, "get_worker_info", lambda: info)


def test_to_iterable_shards_chunks_among_workers(monkeypatch):
    base = DatasetFromList(list(range(10)))
    ds = ToIterableDataset(base, InferenceSampler(10), shard_chunk_size=2)
    assert len(ds) == 10 and list(ds) == list(range(10))  # main process: everything
    _as_worker(monkeypatch, 0, 2)
    assert list(ds) == [0, 1, 4, 5, 8, 9]
    _as_worker(monkeypatch, 1, 2)
    assert list(ds) == [2, 3, 6, 7]
    unsharded = ToIterableDataset(DatasetFromList(list(range(4))), InferenceSampler(4), False)
    assert list(unsharded) == [0, 1, 2, 3]


def test_aspect_ratio_grouping_leaves_no_full_bucket_behind():
    dicts = [{"width": w, "height": h} for w, h in [(2, 1), (1, 2), (2, 1), (1, 2), (2, 1)] * 2]
    grouped = AspectRatioGroupedDataset(dicts, 2)
    for _ in range(3):
        for i, batch in enumerate(grouped):
            assert len({d["width"] > d["height"] for d in batch}) == 1
            if i == 1:
                break
        assert all(len(b) < 2 for b in grouped._buckets)


def _draws(idx):
    """A mapper whose output depends on the global RNGs, as random augmentation does."""
    return (idx, float(np.random.rand()), random.random(), float(torch.rand(())))


def _stream(seed=5):
    dataset = MapDataset(DatasetFromList(list(range(4))), _draws)
    return ToIterableDataset(dataset, TrainingSampler(4, seed=1), seed=seed)


def test_a_seeded_stream_maps_each_position_alike_and_restarts_anywhere(monkeypatch):
    before = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    first = list(itertools.islice(_stream(), 10))
    # The caller's RNGs are left as they were: the model's streams do not see the data.
    assert (np.random.get_state()[1] == before[0]).all() and random.getstate() == before[1]
    assert torch.equal(torch.get_rng_state(), before[2])
    assert list(itertools.islice(_stream(), 10)) == first
    assert list(itertools.islice(_stream(seed=6), 10)) != first

    restarted = _stream(seed=99)
    restarted.load_state_dict(_stream().state_after(6, held=[2, 4]))
    assert list(itertools.islice(restarted, 5)) == [first[2], first[4]] + first[6:9]

    _as_worker(monkeypatch, 1, 2)  # a loader worker maps its share exactly as the main process
    assert list(itertools.islice(_stream(), 5)) == first[1::2]


def test_an_unseeded_stream_is_detectron2s_and_not_resumable():
    stream = ToIterableDataset(DatasetFromList(list(range(3))), InferenceSampler(3))
    assert list(stream) == [0, 1, 2] and not stream.resumable


def _grouped(stream):
    def orient(item):  # index 1 is portrait, the others landscape
        idx = item[0]
        return {"idx": idx, "draw": item[1], "width": 1 if idx == 1 else 2, "height": 1.5}

    return AspectRatioGroupedDataset(MapDataset(stream, orient), 2, stream=stream)


def test_aspect_ratio_grouping_saves_the_images_it_holds_back():
    grouped = _grouped(_stream())
    batches = iter(grouped)
    taken = [next(batches) for _ in range(3)]
    state = grouped.state_dict()
    assert state["replay"], "a portrait image should be waiting for its batch"
    continued = [next(batches) for _ in range(4)]

    resumed = _grouped(_stream(seed=42))
    resumed.load_state_dict(state)
    resumed_batches = iter(resumed)
    assert [next(resumed_batches) for _ in range(4)] == continued
    assert all(len({d["width"] for d in batch}) == 1 for batch in taken + continued)
    # A collate function over the grouping keeps its state reachable.
    assert MapDataset(_grouped(_stream()), list).state_dict() == _stream().state_after(0)


def test_aspect_ratio_grouping_of_a_plain_iterable_has_no_state():
    grouped = AspectRatioGroupedDataset([{"width": 1, "height": 1}] * 2, 2)
    assert grouped.state_dict() is None
    with pytest.raises(ValueError, match="stream"):
        grouped.load_state_dict({})


def test_a_seeded_stream_gives_each_global_position_one_augmentation_whatever_the_world_size(
    monkeypatch,
):
    # One process sees global positions 0, 1, 2, ...; of two, rank r sees r, r + 2, ...
    alone = list(itertools.islice(_stream(), 8))
    monkeypatch.setattr(common.comm, "get_world_size", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(common.comm, "get_rank", lambda rank=rank: rank)
        assert list(itertools.islice(_stream(), 4)) == alone[rank::2]  # indices and draws
