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


def test_release_process_groups_forgets_every_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", world_size=1, rank=0
    )
    try:
        comm.create_local_process_group(1)
        assert comm.get_local_process_group() is not None
        assert comm._get_global_gloo_group() is not None
        comm.release_process_groups()
        assert comm.get_local_process_group() is None
        assert comm._get_global_gloo_group.cache_info().currsize == 0
        assert comm.create_local_process_group.cache_info().currsize == 0
    finally:
        dist.destroy_process_group()
