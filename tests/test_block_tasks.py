"""Taking the tasks of some blocks of a dask array from its graph, a batch at a time."""

from __future__ import annotations

import dask.array as da
import dask.local
import numpy as np
import pytest
from dask.base import optimize

from omio._block_tasks import block_tasks


@pytest.mark.parametrize("batch", [1, 3, 4096])
def test_each_item_gets_exactly_the_tasks_of_its_blocks(batch: int) -> None:
    data = np.arange(6 * 5 * 4, dtype=np.int64).reshape(6, 5, 4)
    arr = ((da.from_array(data, chunks=(1, 2, 4)) * 3)[::-1] + 1).rechunk((1, 2, 4))
    (optimized,) = optimize(arr)
    rows = [[(optimized.name, i, j, 0) for j in range(optimized.numblocks[1])] for i in range(6)]
    seen = []
    for item, keys, tasks in block_tasks(optimized, range(6), lambda i: rows[i], batch=batch):
        assert keys == rows[item]
        assert {k for k in tasks if isinstance(k, tuple) and k[0] == optimized.name} == set(keys)
        blocks = dask.local.get_sync(tasks, keys)
        np.testing.assert_array_equal(np.concatenate(blocks, axis=1), (data * 3)[::-1][item : item + 1] + 1)
        seen.append(item)
    assert seen == list(range(6))
