"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017).

Written from the paper's equations. All ``N = Q + G`` query and gallery
items form one pool; ``d(i, j)`` is the original distance, here the squared
Euclidean distance of the L2-normalised features, ``d = 2 - 2 cos`` (the
ranking of the cosine similarity that
:func:`~mmreid_clip.evaluation.functional.rank_queries` uses).

* Neighbours. ``N(p, k)`` is ``p`` itself followed by its ``k`` nearest
  other items of the pool (ascending distance, ties broken by ascending pool
  index: the queries first, then the gallery, each in input order).
* k-reciprocal neighbours (Eq. 3)::

      R(p, k) = {g in N(p, k) : p in N(g, k)}

* Expansion (Eq. 4): for every ``q in R(p, k)`` whose half-size set
  ``R(q, k/2)`` (``k/2`` rounded up) satisfies
  ``|R(p, k) & R(q, k/2)| >= 2/3 |R(q, k/2)|``, ``R(q, k/2)`` is added;
  the union is ``R*(p, k)``.
* k-reciprocal feature (Eq. 7): the pool-sized vector
  ``V_p[g] = exp(-d(p, g))`` for ``g in R*(p, k1)``, 0 elsewhere.
* Local query expansion (Eq. 10): ``V_p <- mean(V_g for g in N_k2(p))``
  with ``N_k2(p)`` the ``k2`` nearest items *including* ``p`` (``k2 = 1``
  turns the expansion off).
* Jaccard distance (Eq. 11)::

      d_J(p, g) = 1 - sum_j min(V_p[j], V_g[j]) / sum_j max(V_p[j], V_g[j])

  computed as ``1 - s / (|V_p|_1 + |V_g|_1 - s)`` with
  ``s = sum_j min(V_p[j], V_g[j])`` (``min + max = a + b`` entrywise).
* Final distance (Eq. 12)::

      d*(p, g) = (1 - lambda) d_J(p, g) + lambda d(p, g)

Conventions. Some public implementations also rescale every row of ``d``
by its maximum and normalise every ``V_p`` to sum to 1; neither is in the
paper and neither is done here, so re-ranked numbers can differ slightly
from theirs. The inequality of Eq. 4 is ``>=`` as printed.

Cost. Finding the neighbours needs every pool distance: O((Q + G)^2 D)
time, the matrix product of the pool with itself. That ``(Q + G)^2``
matrix is computed in row blocks of ~64 MiB and never held whole; ``V``
has a few tens of non-zeros per row (``|R*|``, then at most ``k2`` times
that after the expansion) and is kept sparse, and the Jaccard sums pair
each query non-zero with the gallery non-zeros of its column only. Memory
is therefore the ``Q x G`` float32 result plus O((Q + G) k1 k2) sparse
entries plus the blocks, not O((Q + G)^2) (a dense implementation holds
several ``(Q + G)^2`` matrices: ~10 bytes per pool pair, 4 GB at 20,000
items). Time still grows with ``(Q + G)^2``: pools above ``max_items``
(default :data:`DEFAULT_RERANK_MAX_ITEMS`) are refused with an error giving
the numbers rather than left to run for a very long time. Everything is
vectorised; the only Python loops run over blocks of rows. Measured at the
PRCC-CC shape (3,873 + 3,384 items, D = 512) on the 2-core benchmark
machine: 4.5-5.5 CPU-seconds and ~210 MiB peak memory growth.
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['DEFAULT_RERANK_MAX_ITEMS', 'k_reciprocal_rerank']

#: Largest pool (queries + gallery) :func:`k_reciprocal_rerank` accepts by
#: default. 50,000 items are ~1.3e12 multiply-adds for the pool distances
#: at D = 512 (minutes on a few cores) and up to a 2.5 GB ``Q x G`` result.
DEFAULT_RERANK_MAX_ITEMS = 50_000

# Row blocks of the pool-distance pass are sized to ~64 MiB of int64 keys.
_BLOCK_BYTES = 64 * 2**20
# Sparse expansions (query expansion, Jaccard pairs) are built about this
# many entries at a time (a few int64 arrays of 8 MiB each), and the
# float64 Jaccard accumulator of a group of queries takes at most
# _ACC_BYTES.
_PAIR_BUDGET = 2**20
_ACC_BYTES = 16 * 2**20


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
    block = max(1, _BLOCK_BYTES // (8 * n))
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


def _reciprocal(knn: Tensor) -> Tensor:
    """Bool ``(N, k + 1)``: is ``knn[i, t]`` a k-reciprocal neighbour of i?

    ``j = knn[i, t]`` qualifies when ``i`` is in ``N(j, k)`` (Eq. 3), looked
    up in ``j``'s own row of ``knn``.
    """
    own = torch.arange(knn.size(0), device=knn.device)[:, None, None]
    return (knn[knn] == own).any(dim=2)


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
    counts = indptr[lists + 1] - indptr[lists]
    total = int(counts.sum())
    req = torch.repeat_interleave(
        torch.arange(lists.numel(), device=lists.device),
        counts,
        output_size=total)
    offset = torch.arange(
        total, device=lists.device) - (counts.cumsum(0) - counts)[req]
    return owners[req], indptr[lists][req] + offset


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


def _pair_distances(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``d = 2 - 2 x_r . x_c`` for listed pairs, in bounded chunks."""
    out = torch.empty(rows.numel(), dtype=torch.float32, device=x.device)
    step = max(1, _BLOCK_BYTES // (8 * x.size(1)))
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
    n, width = knn.shape
    device = knn.device
    in_r = _reciprocal(knn)
    # N(q, k/2) is a prefix of N(q, k): same order
    knn_half = knn[:, :half + 1].contiguous()
    in_r_half = _reciprocal(knn_half)

    # |R(p, k) & R(q, k/2)| for q = knn[p, t], by binary search in the
    # sorted R(p, k) (padded with n, above every index)
    r_sorted = torch.where(in_r, knn, n).sort(dim=1).values
    cand = knn_half[knn]  # (n, k+1, half+1): N(q, k/2)
    cand_ok = in_r_half[knn]  # which of them are in R(q, k/2)
    flat = cand.view(n, -1)
    pos = torch.searchsorted(r_sorted, flat).clamp_(max=width - 1)
    found = (r_sorted.gather(1, pos) == flat).view_as(cand)
    del r_sorted, flat, pos
    overlap = (found & cand_ok).sum(2)
    accept = in_r & (3 * overlap >= 2 * cand_ok.sum(2))
    add = accept[:, :, None] & cand_ok

    rows = torch.arange(n, device=device)
    pair_rows = torch.cat([
        rows[:, None].expand_as(knn)[in_r], rows[:, None,
                                                 None].expand_as(cand)[add]
    ])
    pair_cols = torch.cat([knn[in_r], cand[add]])
    del cand, cand_ok, add, found
    # the union of R(p, k) and the accepted sets, row-major
    key = torch.unique(pair_rows * n + pair_cols)
    pair_rows, pair_cols = key // n, key % n
    vals = torch.exp(-_pair_distances(x, pair_rows, pair_cols))
    return _pointer(pair_rows, n), pair_cols, vals


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
    for start, stop in _groups(sizes, _PAIR_BUDGET, n):
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
    :data:`_PAIR_BUDGET`.

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
    for start, stop in _groups(per_query, _PAIR_BUDGET,
                               max(1, _ACC_BYTES // (8 * num_g))):
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


def k_reciprocal_rerank(
        query_feats: Union[Tensor, np.ndarray],
        gallery_feats: Union[Tensor, np.ndarray],
        k1: int = 20,
        k2: int = 6,
        lambda_value: float = 0.3,
        normalize: bool = True,
        max_items: Optional[int] = DEFAULT_RERANK_MAX_ITEMS) -> Tensor:
    """Re-ranked query-to-gallery distances (module doc: Eqs. 3-12).

    Args:
        query_feats (Tensor | ndarray): ``Q x D`` query features.
        gallery_feats (Tensor | ndarray): ``G x D`` gallery features.
        k1 (int): Size of the k-reciprocal neighbourhoods (Eq. 3). Defaults
            to 20 (the paper's setting).
        k2 (int): Size of the local query expansion, the item itself
            included (Eq. 10); ``1 <= k2 <= k1 + 1``. Defaults to 6.
        lambda_value (float): Weight of the original distance in the final
            one (Eq. 12), in [0, 1]. Defaults to 0.3.
        normalize (bool): L2-normalise the features first, so that the
            original distance is ``2 - 2 cos``. Defaults to True.
        max_items (int, optional): Refuse pools of more than this many
            items (``Q + G``); time grows with ``(Q + G)^2``. None lifts the
            limit. Defaults to :data:`DEFAULT_RERANK_MAX_ITEMS`.

    Returns:
        Tensor: float32 ``Q x G`` distances ``d*`` (smaller = more
        similar) on the features' device; rank with ``scores = -d*``.

    Raises:
        ValueError: bad shapes or parameters, NaN features, or a pool
            above ``max_items``.
        TypeError: non-float features.
    """
    qf, gf = torch.as_tensor(query_feats), torch.as_tensor(gallery_feats)
    if qf.dim() != 2 or gf.dim() != 2:
        raise ValueError('features must be 2-D (N x D), got query '
                         f'{tuple(qf.shape)} and gallery {tuple(gf.shape)}')
    if qf.size(1) != gf.size(1):
        raise ValueError(f'query features are {qf.size(1)}-d but gallery '
                         f'features are {gf.size(1)}-d')
    if not (qf.is_floating_point() and gf.is_floating_point()):
        raise TypeError('features must be floating point, got '
                        f'{qf.dtype} and {gf.dtype}')
    num_q, num_g = qf.size(0), gf.size(0)
    if num_q == 0 or num_g == 0:
        raise ValueError(f're-ranking needs queries and gallery items, got '
                         f'{num_q} queries and {num_g} gallery items')
    if isinstance(k1, bool) or int(k1) != k1 or k1 < 1:
        raise ValueError(f'k1 must be a positive integer, got {k1}')
    if isinstance(k2, bool) or int(k2) != k2 or not 1 <= k2 <= k1 + 1:
        raise ValueError(f'k2 must be an integer in [1, k1 + 1] = '
                         f'[1, {int(k1) + 1}], got {k2}')
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f'lambda_value must be in [0, 1], got '
                         f'{lambda_value}')
    n = num_q + num_g
    if max_items is not None and n > max_items:
        raise ValueError(
            f'k-reciprocal re-ranking of {num_q} queries + {num_g} gallery '
            f'items = {n} pool items is above max_items={max_items}: it '
            f'computes all {n * n:,} pool distances (time grows with '
            f'(Q + G)^2) and returns a {num_q} x {num_g} float32 matrix '
            f'({4 * num_q * num_g / 1e9:.1f} GB); raise max_items to run '
            'it anyway')
    k1, k2 = int(k1), int(k2)
    # a pool smaller than k1 + 1 (toy inputs): every item sees all others
    k = min(k1, n - 1)
    half = min((k1 + 1) // 2, k)

    x = torch.cat([qf.float(), gf.to(device=qf.device, dtype=torch.float32)])
    if torch.isnan(x).any():
        raise ValueError('NaN in the features given to re-ranking')
    if normalize:
        x = F.normalize(x, dim=1)
    knn, original = _neighbours(x, k, num_q)
    indptr, cols, vals = _k_reciprocal_features(x, knn, half)
    del x
    if k2 > 1:
        indptr, cols, vals = _query_expansion(indptr, cols, vals,
                                              knn[:, :min(k2, k + 1)])
    del knn
    return _jaccard_rerank(indptr, cols, vals, original, lambda_value)
