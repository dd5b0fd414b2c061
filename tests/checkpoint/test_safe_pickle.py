"""The restricted unpickler for .pkl weight files."""

from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest

from d2lite.checkpoint.safe_pickle import safe_load_pickle


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Custom:
    pass


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_weights_round_trip(tmp_path, protocol):
    data = {
        "model": collections.OrderedDict(
            w=np.arange(6, dtype=np.float32).reshape(2, 3),
            n=np.int64(7),
            empty=np.zeros((0, 4), np.float64),
        ),
        "__author__": "Detectron2 Model Zoo",
        "meta": [1, 2.5, (True, None)],
    }
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = safe_load_pickle(str(path))
    assert isinstance(loaded["model"], collections.OrderedDict)
    np.testing.assert_array_equal(loaded["model"]["w"], data["model"]["w"])
    assert loaded["model"]["w"].dtype == np.float32
    assert loaded["model"]["n"] == 7 and loaded["model"]["empty"].shape == (0, 4)
    assert loaded["meta"] == [1, 2.5, (True, None)]


def test_python2_style_pickle_with_latin1_bytes(tmp_path):
    # Caffe2 files were written by Python 2 where numpy buffers are str; latin1 keeps bytes.
    arr = np.array([1.0, -2.0, 3.5], dtype=np.float32)
    path = tmp_path / "py2.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": arr}}, protocol=2, fix_imports=True))
    np.testing.assert_array_equal(safe_load_pickle(str(path))["blobs"]["conv1_w"], arr)


def test_malicious_pickle_is_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": _Evil(str(marker))}))
    with pytest.raises(pickle.UnpicklingError, match=rf"{path}.*'(posix|nt)\.system'"):
        safe_load_pickle(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("obj, name", [(_Custom(), "_Custom"), (eval, "builtins.eval")])
def test_other_globals_are_refused(tmp_path, obj, name):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"x": obj}))
    with pytest.raises(pickle.UnpicklingError, match=name):
        safe_load_pickle(str(path))


@pytest.mark.parametrize("payload", [b"", b"garbage bytes", pickle.dumps({"a": np.ones(3)})[:-5]])
def test_corrupt_pickle_names_the_file(tmp_path, payload):
    path = tmp_path / "broken.pkl"
    path.write_bytes(payload)
    with pytest.raises(RuntimeError, match=f"{path}.*truncated or corrupt"):
        safe_load_pickle(str(path))
