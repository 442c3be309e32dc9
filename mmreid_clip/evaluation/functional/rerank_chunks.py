"""Memory-bounded machinery of k-reciprocal re-ranking
(:mod:`.reranking`): the block and budget sizes, and the CSR and chunking
helpers that keep every transient array of both conventions bounded.

The budgets are read from this module at call time (the other re-ranking
modules refer to them as ``rerank_chunks._BLOCK_BYTES`` and so on), so a
test that shrinks them patches them here.
"""
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

# Row blocks of the pool-distance pass are sized to ~64 MiB of int64 keys.
_BLOCK_BYTES = 64 * 2**20

# Sparse expansions (query expansion, Jaccard pairs) are built about this
# many entries at a time (a few int64 arrays of 8 MiB each), and the
# float64 Jaccard accumulator of a group of queries takes at most
# _ACC_BYTES.
_PAIR_BUDGET = 2**20
_ACC_BYTES = 16 * 2**20


def _expand(indptr: Tensor, owners: Tensor,
            lists: Tensor) -> Tuple[Tensor, Tensor]:
    """Concatenate the CSR lists ``lists`` (one per request).

    Args:
        indptr (Tensor): int64 CSR pointer (``L + 1`` entries).
        owners (Tensor): ``(R,)`` a tag per request, repeated per entry.
        lists (Tensor): ``(R,)`` the list each request reads.

    Returns:
        tuple[Tensor, Tensor]: per entry, its request's ``owners`` value and
        its position in the CSR arrays.
    """
    if lists.device.type == 'cpu':
        return _expand_numpy(indptr.numpy(), owners.numpy(), lists.numpy())
    counts = indptr[lists + 1] - indptr[lists]
    total = int(counts.sum())
    req = torch.repeat_interleave(
        torch.arange(lists.numel(), device=lists.device),
        counts,
        output_size=total)
    offset = torch.arange(
        total, device=lists.device) - (counts.cumsum(0) - counts)[req]
    return owners[req], indptr[lists][req] + offset


def _expand_numpy(indptr: np.ndarray, owners: np.ndarray,
                  lists: np.ndarray) -> Tuple[Tensor, Tensor]:
    """:func:`_expand` on CPU tensors, in NumPy (the same integers).

    Why: its arrays hold up to :data:`_PAIR_BUDGET` entries, so torch
    splits each of its ops over its intra-op threads, and on a machine
    whose other cores are busy every op then waits for a descheduled
    thread. Measured at the LTCC pool (7,543 items, k1/k2 50/15) with 2
    threads on a loaded 2-core machine: the released re-ranking took 66 s
    against 9.5 s with 1 thread, nearly all of it here.
    """
    starts = indptr[lists]
    counts = indptr[lists + 1] - starts
    req = np.repeat(np.arange(lists.size), counts)
    offset = np.arange(req.size) - (np.cumsum(counts) - counts)[req]
    return torch.from_numpy(owners[req]), torch.from_numpy(starts[req] +
                                                           offset)


def _groups(cost: Tensor, budget: int, max_rows: int):
    """Consecutive row ranges whose summed ``cost`` stays near ``budget``.

    Yields ``(start, stop)`` covering all rows, each with at least one row
    and at most ``max_rows`` rows; a single row above the budget forms its
    own group.
    """
    ends = cost.cumsum(0)
    n = cost.numel()
    start, done = 0, 0
    while start < n:
        stop = int(torch.searchsorted(ends, done + budget, right=True))
        stop = min(max(stop, start + 1), start + max_rows, n)
        yield start, stop
        done = int(ends[stop - 1])
        start = stop


def _pointer(index: Tensor, length: int) -> Tensor:
    """CSR pointer of a sorted index array over ``length`` lists."""
    ptr = torch.zeros(length + 1, dtype=torch.int64, device=index.device)
    ptr[1:] = torch.bincount(index, minlength=length).cumsum(0)
    return ptr


def _row_blocks(n: int, bytes_per_row: int):
    """Near-equal consecutive row ranges of at most ~_BLOCK_BYTES each.

    Equal sizes rather than full blocks plus a remainder: a last block of
    one or a few rows would go through other BLAS kernels (matrix-vector)
    whose float32 rounding differs from the matrix-matrix ones.
    """
    count = -(-n * bytes_per_row // _BLOCK_BYTES)
    size = -(-n // max(1, count))
    return [(s, min(s + size, n)) for s in range(0, n, size)]
