"""A batch sampler that never mixes groups (e.g. landscape and portrait images) in a batch."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data.sampler import BatchSampler, Sampler

__all__ = ["GroupedBatchSampler"]


class GroupedBatchSampler(BatchSampler):
    """Collect the indices of an index sampler into batches whose elements share a group id.

    Each group fills its own buffer, in the order the wrapped sampler yields; a buffer is
    emitted as soon as it holds ``batch_size`` indices, so batches follow the sampler's order
    as closely as grouping allows. Leftover indices of an unfinished buffer are not emitted.
    """

    def __init__(self, sampler: Sampler, group_ids: Sequence[int], batch_size: int) -> None:
        """
        Args:
            sampler (Sampler): yields indices in [0, N).
            group_ids (Sequence[int]): N integers, the group of each index.
            batch_size (int): indices per batch.

        Raises:
            ValueError: if ``sampler`` is not a ``Sampler`` or ``group_ids`` is not 1-D.
        """
        # BatchSampler.__init__ is not called: its drop_last has no meaning here.
        if not isinstance(sampler, Sampler):
            raise ValueError(f"sampler must be a torch.utils.data.Sampler, got {sampler!r}")
        self.sampler = sampler
        self.group_ids = np.asarray(group_ids)
        if self.group_ids.ndim != 1:
            raise ValueError(f"group_ids must be 1-D, got shape {self.group_ids.shape}")
        self.batch_size = batch_size
        self.buffer_per_group: dict[int, list[int]] = {
            g: [] for g in np.unique(self.group_ids).tolist()
        }

    def __iter__(self) -> Iterator[list[int]]:
        for idx in self.sampler:
            buffer = self.buffer_per_group[self.group_ids[idx].item()]
            buffer.append(idx)
            if len(buffer) == self.batch_size:
                batch = buffer[:]
                # Emptied before the yield: code after a yield may never run.
                del buffer[:]
                yield batch

    def __len__(self) -> int:
        raise NotImplementedError("len() of GroupedBatchSampler is not defined: groups vary")
