from __future__ import annotations

import torch

from d2lite.utils import comm


def test_comm_single_process():
    assert comm.get_world_size() == 1 and comm.get_rank() == 0
    assert comm.get_local_rank() == 0 and comm.get_local_size() == 1
    assert comm.is_main_process()
    comm.synchronize()
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    assert comm.gather(3) == [3]
    d = {"x": torch.tensor(2.0)}
    assert comm.reduce_dict(d) is d
    assert isinstance(comm.shared_random_seed(), int)
