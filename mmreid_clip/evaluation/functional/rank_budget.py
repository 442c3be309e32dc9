"""Memory budget of :func:`~.ranking.rank_queries`: the default budget,
the measured peak bytes per (query, gallery) cell of each backend, and
:func:`auto_chunk_size`, the queries per chunk that fit the budget.
"""
import torch

#: Working memory (bytes) the chunk-sized buffers may take by default.
#: 256 MiB gives chunks of ~670 queries on a 19,848-image gallery with the
#: torch backend, ~2,250 with numba.
DEFAULT_MEMORY_BUDGET = 256 * 2**20

# Peak bytes per (query, gallery) cell of a chunk, measured (maxrss slope
# over chunk sizes): fp32 scores (4) are turned into int64 keys (8) and
# freed before the int64 searchsorted output (8) exists, so 16; float64
# scores (8) live with two int64 buffers (16) and a bool (1) while their
# keys are built, so 32. A junk mask adds 1; the rest is margin.
_BYTES_PER_CELL = {torch.float32: 20, torch.float64: 36}
# The compiled kernel keeps only the scores and the junk mask (1 byte).
_BYTES_PER_CELL_NUMBA = {torch.float32: 6, torch.float64: 10}


def auto_chunk_size(num_gallery: int,
                    memory_budget: int = DEFAULT_MEMORY_BUDGET,
                    dtype: torch.dtype = torch.float32,
                    backend: str = 'torch') -> int:
    """Number of queries per chunk that keeps the work buffers in budget.

    Args:
        num_gallery (int): G, the length of every buffer row.
        memory_budget (int): Bytes the ``chunk x G`` buffers may take.
        dtype (torch.dtype): The score dtype, float32 (also for fp16/bf16)
            or float64.
        backend (str): ``'torch'`` or ``'numba'`` (resolved, not
            ``'auto'``): what runs the chunks.

    Returns:
        int: ``max(1, memory_budget // (B * G))`` with ``B`` the peak bytes
        per (query, gallery) cell: 20 for float32 scores, 36 for float64
        with the torch backend; 6 and 10 with numba (scores + junk mask).
    """
    table = _BYTES_PER_CELL_NUMBA if backend == 'numba' else _BYTES_PER_CELL
    per_cell = table[torch.float64 if dtype ==
                     torch.float64 else torch.float32]
    return int(max(1, memory_budget // (per_cell * max(num_gallery, 1))))
