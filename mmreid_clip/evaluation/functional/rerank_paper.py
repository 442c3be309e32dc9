"""The ``'paper'`` convention of k-reciprocal re-ranking: Eqs. 3-12 of
Zhong et al. as :mod:`.reranking`'s module doc writes them (neighbours,
the k-reciprocal features, local query expansion, Jaccard and final
distances), on sparse features in bounded chunks.
"""
from typing import Tuple

import torch
from torch import Tensor

from . import rerank_chunks
from .rerank_chunks import _expand, _groups, _pointer
from .rerank_sets import _expanded_pairs


def _neighbours(x: Tensor, k: int, num_query: int) -> Tuple[Tensor, Tensor]:
    """Nearest neighbours in the pool and the query-gallery distances.

    Args:
        x (Tensor): ``N x D`` float32 pool features (L2-normalised).
        k (int): Neighbours per item besides itself.
        num_query (int): The first ``Q`` rows are the queries.

    Returns:
        tuple[Tensor, Tensor]: int64 ``(N, k + 1)`` neighbour lists (the
        item itself, then by ascending distance, ties by ascending index)
        and the float32 ``Q x G`` distances ``d``.
    """
    n = x.size(0)
    device = x.device
    knn = torch.empty(n, k + 1, dtype=torch.int64, device=device)
    original = torch.empty(
        num_query, n - num_query, dtype=torch.float32, device=device)
    cols = torch.arange(n, device=device)
    block = max(1, rerank_chunks._BLOCK_BYTES // (8 * n))
    for s in range(0, n, block):
        e = min(s + block, n)
        # + 0.0 turns a clamped -0.0 into +0.0 (they must tie)
        dist = (x[s:e] @ x.t()).mul_(-2.0).add_(2.0).clamp_(min=0.0).add_(0.)
        if s < num_query:
            q_end = min(e, num_query)
            original[s:q_end] = dist[:q_end - s, num_query:]
        # distances >= +0.0 have bit patterns ordered like their values,
        # so bits * 2**32 + column is an exact ascending sort key
        keys = dist.view(torch.int32).to(torch.int64)
        del dist
        keys.bitwise_left_shift_(32).bitwise_or_(cols)
        rows = torch.arange(e - s, device=device)
        keys[rows, rows + s] = -1  # the item itself always comes first
        knn[s:e] = keys.topk(k + 1, dim=1, largest=False, sorted=True).indices
        del keys
    return knn, original


def _pair_distances(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``d = 2 - 2 x_r . x_c`` for listed pairs, in bounded chunks."""
    out = torch.empty(rows.numel(), dtype=torch.float32, device=x.device)
    step = max(1, rerank_chunks._BLOCK_BYTES // (8 * x.size(1)))
    for s in range(0, rows.numel(), step):
        r, c = rows[s:s + step], cols[s:s + step]
        out[s:s + step] = (x[r] * x[c]).sum(1)
    return out.mul_(-2.0).add_(2.0).clamp_(min=0.0)


def _k_reciprocal_features(x: Tensor, knn: Tensor,
                           half: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Sparse ``V`` of Eq. 7 over the expanded sets ``R*`` (Eq. 3, 4).

    Returns:
        tuple[Tensor, Tensor, Tensor]: CSR ``indptr`` (``N + 1``),
        ``cols`` and float32 ``vals``, rows and columns ascending.
    """
    pair_rows, pair_cols = _expanded_pairs(knn, half, strict=False)
    vals = torch.exp(-_pair_distances(x, pair_rows, pair_cols))
    return _pointer(pair_rows, knn.size(0)), pair_cols, vals


def _query_expansion(indptr: Tensor, cols: Tensor, vals: Tensor,
                     nbr: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Eq. 10: every row of ``V`` replaced by the mean over ``nbr`` rows.

    Args:
        indptr, cols, vals (Tensor): CSR ``V``.
        nbr (Tensor): int64 ``(N, k2)`` the rows to average.

    Returns:
        tuple[Tensor, Tensor, Tensor]: CSR of the expanded ``V``.
    """
    n, k2 = nbr.shape
    device = nbr.device
    owners = torch.arange(n, device=device)[:, None].expand_as(nbr)
    owners, nbr = owners.reshape(-1), nbr.reshape(-1)
    # a row's expansion holds its k2 neighbours' non-zeros: build it in
    # groups of rows to bound the transient entries
    sizes = (indptr[nbr + 1] - indptr[nbr]).view(n, k2).sum(1)
    parts_key, parts_val = [], []
    for start, stop in _groups(sizes, rerank_chunks._PAIR_BUDGET, n):
        req = slice(start * k2, stop * k2)
        own, at = _expand(indptr, owners[req], nbr[req])
        key, inverse = torch.unique(own * n + cols[at], return_inverse=True)
        summed = torch.zeros(key.numel(), dtype=torch.float64, device=device)
        summed.index_add_(0, inverse, vals[at].double())
        parts_key.append(key)
        parts_val.append(summed.div_(k2).float())
    key, vals = torch.cat(parts_key), torch.cat(parts_val)
    return _pointer(key // n, n), key % n, vals


def _jaccard_rerank(indptr: Tensor, cols: Tensor, vals: Tensor,
                    original: Tensor, lambda_value: float) -> Tensor:
    """Eq. 11 and 12 for the query rows against the gallery rows, in place.

    ``sum_j min(V_p[j], V_g[j])`` only has terms where both are non-zero:
    the gallery rows' non-zeros are indexed by column once, and every
    query non-zero ``(p, j)`` is paired with the gallery non-zeros of
    column ``j``. Queries are taken in groups whose pairs fit
    :data:`rerank_chunks._PAIR_BUDGET`.

    Args:
        indptr, cols, vals (Tensor): CSR ``V`` of the pool (queries first).
        original (Tensor): float32 ``Q x G`` distances ``d``, overwritten
            with ``d*``.
        lambda_value (float): Eq. 12's weight.

    Returns:
        Tensor: ``original``, now holding ``d*``.
    """
    num_q, num_g = original.shape
    n = num_q + num_g
    device = original.device
    rows = torch.repeat_interleave(
        torch.arange(n, device=device), indptr[1:] - indptr[:-1])
    row_sum = torch.zeros(n, dtype=torch.float64, device=device)
    row_sum.index_add_(0, rows, vals.double())
    # gallery non-zeros by column (stable: gallery rows ascending)
    g_first = int(indptr[num_q])
    g_cols = cols[g_first:]
    order = torch.argsort(g_cols, stable=True)
    g_row = rows[g_first:][order] - num_q
    g_val = vals[g_first:][order]
    col_ptr = _pointer(g_cols[order], n)
    # query non-zeros are the prefix of the row-major CSR
    q_cols, q_vals = cols[:g_first], vals[:g_first]
    fan = col_ptr[q_cols + 1] - col_ptr[q_cols]
    per_query = torch.zeros(num_q, dtype=torch.int64, device=device)
    per_query.index_add_(0, rows[:g_first], fan)
    q_sum, g_sum = row_sum[:num_q], row_sum[num_q:]
    max_rows = max(1, rerank_chunks._ACC_BYTES // (8 * num_g))
    for start, stop in _groups(per_query, rerank_chunks._PAIR_BUDGET,
                               max_rows):
        nz = slice(int(indptr[start]), int(indptr[stop]))
        entry, at = _expand(col_ptr,
                            torch.arange(nz.start, nz.stop, device=device),
                            q_cols[nz])
        mins = torch.minimum(q_vals[entry], g_val[at]).double()
        acc = torch.zeros(
            stop - start, num_g, dtype=torch.float64, device=device)
        acc.view(-1).index_add_(0, (rows[entry] - start) * num_g + g_row[at],
                                mins)
        del entry, at, mins
        # d_J = 1 - s / (|V_p| + |V_g| - s), then Eq. 12, in place
        union = (q_sum[start:stop, None] + g_sum[None]).sub_(acc)
        jaccard = acc.div_(union).neg_().add_(1.0)
        del union
        block = original[start:stop]
        block.copy_(
            jaccard.mul_(1.0 - lambda_value).add_(
                block.double(), alpha=lambda_value))
    return original
