"""Exact top-k by inner product in bounded memory: :func:`stable_topk`
(the head of a stable descending sort, ties by ascending gallery index)
and :func:`chunked_topk` (chunk by chunk of queries, sized from a memory
budget by :func:`search_chunk_size`).
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray]

#: Bytes the ``chunk x N`` buffers of :func:`chunked_topk` may take.
DEFAULT_SEARCH_BUDGET = 256 * 2**20

# Peak bytes per (query, gallery) cell in stable_topk: the scores (4 or 8),
# two bool masks, the int32 running count of ties and the bool selection,
# with margin.
_BYTES_PER_CELL = {torch.float32: 16, torch.float64: 24}


def search_chunk_size(num_gallery: int,
                      memory_budget: int = DEFAULT_SEARCH_BUDGET,
                      dtype: torch.dtype = torch.float32) -> int:
    """Queries per chunk that keep the ``chunk x N`` buffers in budget.

    Args:
        num_gallery (int): N, the length of a buffer row.
        memory_budget (int): Bytes for the buffers.
        dtype (torch.dtype): Score dtype (float32 or float64).

    Returns:
        int: At least 1.
    """
    per_cell = _BYTES_PER_CELL[torch.float64 if dtype ==
                               torch.float64 else torch.float32]
    return int(max(1, memory_budget // (per_cell * max(int(num_gallery), 1))))


def _order_stably(values: Tensor, indices: Tensor) -> Tuple[Tensor, Tensor]:
    """Sort each row by (value descending, index ascending)."""
    by_index = indices.argsort(dim=1)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    by_value = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, by_value), indices.gather(1, by_value)


def _select_with_ties(scores: Tensor, kth: Tensor,
                      k: int) -> Tuple[Tensor, Tensor]:
    """Rows whose ties straddle the k-th place: keep the leftmost ties."""
    c = scores.size(0)
    above = scores > kth
    room = k - above.sum(dim=1, keepdim=True, dtype=torch.int32)
    tied = scores == kth
    # the leftmost `room` tied columns: a running count of ties per row
    take = tied.cumsum(dim=1, dtype=torch.int32) <= room
    select = above.logical_or_(take.logical_and_(tied))
    del take, tied
    # nonzero walks rows in order and columns ascending: exactly k per row
    indices = select.nonzero()[:, 1].view(c, k)
    return scores.gather(1, indices), indices


def stable_topk(scores: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The first ``k`` columns of a stable descending sort of every row.

    Equal to ``torch.sort(scores, dim=1, descending=True, stable=True)``
    cut to ``k`` columns (ties broken by ascending column index, whichever
    side of the k-th place they fall), but O(N) per row instead of
    O(N log N). ``topk`` gives the k-th largest value ``t`` and a set of k
    columns; that set is the right one unless some column equal to ``t``
    was left out (a tie across the k-th place, where ``topk`` may keep any
    of the tied columns). Those rows, found by counting the columns equal
    to ``t``, are redone: every column above ``t`` and the leftmost of the
    columns equal to ``t``. The k columns are then ordered stably.

    Args:
        scores (Tensor): ``(c, N)`` floating-point scores without NaN.
        k (int): Columns to keep; ``k > N`` keeps N.

    Returns:
        tuple[Tensor, Tensor]: ``(values, indices)``, both ``(c, min(k,
        N))``; indices are int64.
    """
    if scores.dim() != 2:
        raise ValueError(f'scores must be 2-D, got {tuple(scores.shape)}')
    if k < 0:
        raise ValueError(f'k must be >= 0, got {k}')
    c, n = scores.shape
    k = min(int(k), n)
    if k == 0 or c == 0:
        return (scores.new_empty((c, k)),
                torch.empty((c, k), dtype=torch.int64, device=scores.device))
    if 2 * k >= n:
        # a large share of the row: sorting all of it is as cheap
        values, indices = torch.sort(
            scores, dim=1, descending=True, stable=True)
        return values[:, :k].contiguous(), indices[:, :k].contiguous()
    values, indices = scores.topk(k, dim=1, sorted=True)
    kth = values[:, k - 1:k]
    ties_in_row = (scores == kth).sum(dim=1)
    ties_kept = (values == kth).sum(dim=1)
    straddle = torch.nonzero(ties_in_row != ties_kept).flatten()
    if straddle.numel():
        v, i = _select_with_ties(scores[straddle], kth[straddle], k)
        values[straddle], indices[straddle] = v, i
    return _order_stably(values, indices)


def _as_tensor(x: ArrayLike, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a tensor or an array, got '
                        f'{type(x).__name__}')
    if x.dim() != 2:
        raise ValueError(f'{name} must be 2-D (N x D), got shape '
                         f'{tuple(x.shape)}')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be floating point, got {x.dtype}')
    return x


def chunked_topk(
        queries: ArrayLike,
        gallery: ArrayLike,
        k: int,
        chunk_size: Optional[int] = None,
        memory_budget: int = DEFAULT_SEARCH_BUDGET) -> Tuple[Tensor, Tensor]:
    """Exact top-k inner products of every query over the gallery.

    Queries are processed ``chunk_size`` at a time; a chunk's ``chunk x N``
    score block (and a few masks of the same shape) is the only large
    buffer. The order is the stable one of :func:`stable_topk`.

    Note:
        Scores are computed in float32 (float64 when an input is float64).
        The matrix product of a chunk may round a dot product differently
        for another chunk size (BLAS blocking), which can only swap scores
        equal to within an ulp.

    Args:
        queries (Tensor | ndarray): ``Q x D`` query features.
        gallery (Tensor | ndarray): ``N x D`` gallery features.
        k (int): Results per query (``min(k, N)`` are returned).
        chunk_size (int, optional): Queries per chunk; None picks it from
            ``memory_budget`` (:func:`search_chunk_size`).
        memory_budget (int): Bytes for the chunk buffers. Defaults to
            256 MiB.

    Returns:
        tuple[Tensor, Tensor]: ``(scores, indices)`` of shape
        ``Q x min(k, N)`` on the gallery's device; indices are int64.

    Raises:
        ValueError: Bad shapes, ``k < 1`` or NaN scores.
        TypeError: Non-float inputs.
    """
    queries = _as_tensor(queries, 'queries')
    gallery = _as_tensor(gallery, 'gallery')
    if queries.size(1) != gallery.size(1):
        raise ValueError(f'queries are {queries.size(1)}-d but the gallery '
                         f'is {gallery.size(1)}-d')
    if int(k) < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    dtype = (
        torch.float64 if torch.float64 in (queries.dtype,
                                           gallery.dtype) else torch.float32)
    device = gallery.device
    gallery = gallery.to(dtype)
    queries = queries.to(device=device, dtype=dtype)
    num_query, num_gallery = queries.size(0), gallery.size(0)
    k = min(int(k), num_gallery)
    if chunk_size is None:
        chunk_size = search_chunk_size(num_gallery, memory_budget, dtype)
    elif int(chunk_size) < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    chunk_size = int(chunk_size)
    values = torch.empty((num_query, k), dtype=dtype, device=device)
    indices = torch.empty((num_query, k), dtype=torch.int64, device=device)
    gallery_t = gallery.t()
    for start in range(0, num_query, chunk_size):
        stop = min(start + chunk_size, num_query)
        block = queries[start:stop] @ gallery_t
        if torch.isnan(block.sum()) and torch.isnan(block).any():
            raise ValueError(f'NaN scores for queries {start}..{stop - 1}: '
                             'check the features')
        values[start:stop], indices[start:stop] = stable_topk(block, k)
        del block
    return values, indices
