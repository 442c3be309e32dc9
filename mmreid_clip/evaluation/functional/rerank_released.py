"""The ``'released'`` convention of k-reciprocal re-ranking: the values
of the authors' released ``re_ranking`` code (scaled distances,
``np.argsort`` neighbour lists, float16 features, query expansion and
Jaccard sums), rewritten blocked and sparse; :mod:`.reranking`'s module doc
lists every difference from the paper.
"""
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

from . import rerank_chunks
from .rerank_chunks import _expand, _groups, _pointer, _row_blocks
from .rerank_sets import _expanded_pairs


def _released_distances(x: Tensor, sq: Tensor, start: int,
                        stop: int) -> Tensor:
    """Rows ``start:stop`` of the released code's scaled distances.

    ``(|x_i|^2 + |x_j|^2) - 2 x_i . x_j`` in float32 by one ``addmm``, as
    the released code computes it (not clamped: it can be slightly
    negative), then each row divided by its maximum. The released code
    divides each *column* by its maximum and transposes; the matrix is
    symmetric (bit for bit with MKL, checked), so that is row ``i``
    divided by row ``i``'s maximum. A row block gave the same bits as the
    released code's full-matrix product with blocks of ~450 rows (the
    PRCC shape); the much smaller blocks of pools near ``max_items`` were
    not checked (a last-bit difference rarely moves a float16 rounding,
    see the module doc).

    Raises:
        ValueError: a row whose maximum is not positive (all items at the
            same point), where the released code would divide by zero.
    """
    dist = (sq[start:stop, None] + sq[None, :]).addmm_(
        x[start:stop], x.t(), beta=1, alpha=-2)
    top = dist.amax(dim=1, keepdim=True)
    if not bool((top > 0).all()):
        raise ValueError(
            "re-ranking (convention='released') needs, for every item, "
            'some other item at a positive distance: its distances are '
            'divided by their maximum')
    return dist.div_(top)


def _released_neighbours(x: Tensor, sq: Tensor, k: int,
                         num_query: int) -> Tuple[Tensor, Tensor]:
    """Released-convention neighbour lists and query-gallery distances.

    The rows are sorted by ``np.argsort``, as the released code sorts
    them: its default sort is not stable, and calling it on the same row
    values orders exact ties the way the released code's call does (a
    stable order differed from it at one tie in ~7,000 rows at the PRCC
    shape, enough to change a k2 neighbour).

    Returns:
        tuple[Tensor, Tensor]: int64 ``(N, k + 1)`` lists (ascending scaled
        distance; the item itself is not forced first) and the float32
        ``Q x G`` scaled distances.
    """
    n = x.size(0)
    knn = torch.empty(n, k + 1, dtype=torch.int64)
    original = torch.empty(num_query, n - num_query, dtype=torch.float32)
    # float32 distances + the int64 argsort, transient per row
    for s, e in _row_blocks(n, 12 * n):
        dist = _released_distances(x, sq, s, e)
        if s < num_query:
            q_end = min(e, num_query)
            original[s:q_end] = dist[:q_end - s, num_query:]
        order = np.argsort(dist.numpy(), axis=1)
        del dist
        knn[s:e] = torch.from_numpy(order[:, :k + 1])
        del order
    return knn, original


def _released_pair_values(x: Tensor, sq: Tensor, indptr: Tensor,
                          cols: Tensor) -> np.ndarray:
    """Scaled distances at the CSR entries, recomputed block by block.

    The entries of ``R*`` reach beyond the neighbour lists, so the rows
    are computed again rather than kept (``N^2`` floats); the same blocks
    as :func:`_released_neighbours` give the same bits.
    """
    n = x.size(0)
    vals = torch.empty(cols.numel(), dtype=torch.float32)
    for s, e in _row_blocks(n, 12 * n):
        lo, hi = int(indptr[s]), int(indptr[e])
        rows = torch.repeat_interleave(
            torch.arange(e - s), indptr[s + 1:e + 1] - indptr[s:e],
            output_size=hi - lo)
        vals[lo:hi] = _released_distances(x, sq, s, e)[rows, cols[lo:hi]]
    return vals.numpy()


def _drop_zeros(indptr: Tensor, cols: Tensor,
                vals: np.ndarray) -> Tuple[Tensor, Tensor, np.ndarray]:
    """The CSR without its entries equal to 0 (float16 underflow): the
    released code only visits non-zero entries."""
    keep = vals != 0
    if keep.all():
        return indptr, cols, vals
    mask = torch.from_numpy(keep)
    rows = torch.repeat_interleave(
        torch.arange(indptr.numel() - 1), indptr[1:] - indptr[:-1])
    return (_pointer(rows[mask], indptr.numel() - 1), cols[mask],
            vals[keep])


def _released_features(indptr: Tensor, dist: np.ndarray) -> np.ndarray:
    """float16 ``V`` values: ``exp(-d)`` over ``R*``, each row summing to 1.

    Every float step is NumPy's, in the released code's dtypes: float32
    ``np.exp`` (it differs from a correctly rounded exp in the last bit
    for ~40% of inputs, which can move a float16 rounding), float32
    ``np.sum`` per row (pairwise summation, so the row sums are taken
    with NumPy on rows of equal length, which it sums exactly as it sums
    one such row alone), float32 division, then the float16 cast.
    """
    weight = np.exp(-dist)
    ptr = indptr.numpy()
    lengths = np.diff(ptr)
    row_sum = np.zeros(lengths.size, dtype=np.float32)
    for length in np.unique(lengths[lengths > 0]):
        rows = np.flatnonzero(lengths == length)
        row_sum[rows] = weight[ptr[rows, None] + np.arange(length)].sum(1)
    return (weight / np.repeat(row_sum, lengths)).astype(np.float16)


def _released_query_expansion(
        indptr: Tensor, cols: Tensor, vals: np.ndarray,
        nbr: Tensor) -> Tuple[Tensor, Tensor, np.ndarray]:
    """Eq. 10 as the released code evaluates it (NumPy ``mean`` of float16
    rows): a float32 running sum over the ``k2`` rows in neighbour order,
    one float32 division, a float16 cast.

    Args:
        indptr, cols (Tensor): CSR of ``V``; vals (ndarray): its float16
            values.
        nbr (Tensor): int64 ``(N, k2)`` the rows to average, in order.

    Returns:
        tuple: CSR of the expanded ``V`` (float16 values, zeros dropped).
    """
    n, count = nbr.shape
    sizes = (indptr[nbr + 1] - indptr[nbr]).sum(1)
    parts_key, parts_val = [], []
    for start, stop in _groups(sizes, rerank_chunks._PAIR_BUDGET, n):
        lists = nbr[start:stop].reshape(-1)
        req, at = _expand(indptr, torch.arange(lists.numel()), lists)
        owner = req // count + start
        key, inverse = torch.unique(owner * n + cols[at], return_inverse=True)
        inverse, at = inverse.numpy(), at.numpy()
        # each (owner, column) appears once per neighbour rank t, so the
        # ranks are added one after the other, in order
        step = (req % count).numpy()
        order = np.argsort(step, kind='stable')
        bounds = np.searchsorted(step[order], np.arange(count + 1))
        acc = np.zeros(key.numel(), dtype=np.float32)
        for t in range(count):
            sel = order[bounds[t]:bounds[t + 1]]
            acc[inverse[sel]] += vals[at[sel]]
        parts_key.append(key)
        parts_val.append((acc / np.float32(count)).astype(np.float16))
    key = torch.cat(parts_key)
    return _drop_zeros(
        _pointer(key // n, n), key % n, np.concatenate(parts_val))


def _released_jaccard(indptr: Tensor, cols: Tensor, vals: np.ndarray,
                      original: Tensor, lambda_value: float) -> Tensor:
    """Eq. 11 and 12 as the released code evaluates them, in place.

    ``s = sum_j min(V_p[j], V_g[j])`` is accumulated in float16, rounded
    after every term, in ascending ``j``; the Jaccard distance is
    ``1 - s / (2 - s)`` in float16 (the released code takes
    ``|V_p|_1 + |V_g|_1`` as 2); it is scaled by ``1 - lambda`` in
    float16 and added to ``lambda d`` in float32. A query's terms are
    visited by the rank ``t`` of ``j`` among its non-zeros: step ``t``
    adds, for every query of a group at once, the terms of its ``t``-th
    column, which keeps each ``(p, g)`` sum in ascending ``j``.

    Args:
        indptr, cols (Tensor): CSR ``V`` of the pool (queries first);
            vals (ndarray): its float16 values.
        original (Tensor): float32 ``Q x G`` scaled distances, overwritten
            with ``d*``.
        lambda_value (float): Eq. 12's weight (a Python float: NumPy then
            applies ``1 - lambda`` to the float16 array in float16).

    Returns:
        Tensor: ``original``, now holding ``d*``.
    """
    num_q, num_g = original.shape
    n = num_q + num_g
    rows = torch.repeat_interleave(
        torch.arange(n), indptr[1:] - indptr[:-1], output_size=cols.numel())
    # gallery non-zeros by column (stable: gallery rows ascending)
    g_first = int(indptr[num_q])
    g_cols = cols[g_first:]
    order = torch.argsort(g_cols, stable=True)
    g_row = (rows[g_first:][order] - num_q).numpy()
    g_val = vals[g_first:][order.numpy()]
    col_ptr = _pointer(g_cols[order], n)
    out = original.numpy()
    nnz = (indptr[1:num_q + 1] - indptr[:num_q]).numpy()
    step = max(1, rerank_chunks._ACC_BYTES // (8 * num_g))
    for start in range(0, num_q, step):
        stop = min(start + step, num_q)
        acc = np.zeros((stop - start) * num_g, dtype=np.float16)
        lengths = nnz[start:stop]
        for t in range(int(lengths.max(initial=0))):
            active = np.flatnonzero(lengths > t)
            at_q = indptr[start + torch.from_numpy(active)] + t
            req, at_g = _expand(col_ptr, torch.arange(active.size),
                                cols[at_q])
            at_q = at_q.numpy()
            req, at_g = req.numpy(), at_g.numpy()
            flat = active[req] * num_g + g_row[at_g]
            acc[flat] = acc[flat] + np.minimum(vals[at_q][req], g_val[at_g])
        acc = acc.reshape(stop - start, num_g)
        jaccard = 1 - acc / (2 - acc)
        out[start:stop] = (
            jaccard * (1 - lambda_value) + out[start:stop] * lambda_value)
    return original


def _released_rerank(x: Tensor, num_query: int, k1: int, k2: int,
                     lambda_value: float) -> Tensor:
    """The ``'released'`` convention (module doc) on CPU float32 ``x``."""
    n = x.size(0)
    k = min(k1, n - 1)
    # Python's round, like the released code's np.around, rounds an exact
    # half to the even integer: 5 / 2 -> 2, 7 / 2 -> 4
    half = min(round(k1 / 2), k)
    sq = x.pow(2).sum(dim=1)
    knn, original = _released_neighbours(x, sq, k, num_query)
    rows, cols = _expanded_pairs(knn, half, strict=True)
    indptr = _pointer(rows, n)
    del rows
    vals = _released_features(
        indptr, _released_pair_values(x, sq, indptr, cols))
    indptr, cols, vals = _drop_zeros(indptr, cols, vals)
    if k2 > 1:
        indptr, cols, vals = _released_query_expansion(
            indptr, cols, vals, knn[:, :min(k2, k + 1)])
    del knn
    return _released_jaccard(indptr, cols, vals, original, lambda_value)
