"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017).

Two conventions (``convention=``): ``'paper'``, the default, written from
the paper's equations below, and ``'released'``, the values of the authors'
released code (see Conventions), which published re-ranked numbers come
from. They differ by several points of R@1 and mAP.

The paper's equations. All ``N = Q + G`` query and gallery
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

Conventions. ``'paper'`` is the above, with Eq. 4's ``>=`` as printed.
``'released'`` reproduces the authors' released Python ``re_ranking``
(Zhong et al.'s code, which CLIP-ReID, TransReID and most ReID code bases
copy as ``utils/reranking.py``) as CLIP-ReID's evaluator calls it: on the
CPU, after ``F.normalize`` of the features (``normalize=True``). It is
written anew (vectorised, blocked, sparse), and its output equals the
released code's bit for bit on the golden inputs of
``tests/test_evaluation/test_reranking_conventions.py`` and, checked once
against the released code, on Gaussian features from 30 x 80 to the PRCC
(3,873 x 3,384) and LTCC (493 x 7,050) shapes at D = 512 with k1/k2 =
20/6 and 50/15. What ``'released'`` does differently:

1. Distance: ``|a|^2 + |b|^2 - 2 a.b`` in float32 by one ``addmm``, not
   clamped (the squared Euclidean distance; ``2 - 2 cos`` up to rounding
   for unit features), then every row divided by its maximum, so
   ``d <= 1``. The scaled ``d`` is used everywhere, Eq. 7 and Eq. 12
   included.
2. Neighbour lists: ``np.argsort`` of each scaled row; the item itself is
   not forced first. NumPy's default sort is not stable, so exact ties are
   ordered as NumPy orders them; the rows are sorted with the same call,
   which reproduces that order on the same NumPy build.
3. ``k1/2`` is rounded half to even (``np.around``: 5/2 -> 2, 13/2 -> 6)
   rather than up.
4. Eq. 4 is strict: ``|R(p, k) & R(q, k/2)| > 2/3 |R(q, k/2)|`` (evaluated
   in float64 as written).
5. ``V_p`` is normalised: ``exp(-d(p, g)) / sum_{g' in R*} exp(-d(p, g'))``
   (float32 ``np.exp`` and ``np.sum``, then cast to float16).
6. Query expansion averages the float16 rows with a float32 running sum in
   neighbour order, divides once and casts to float16 (NumPy's ``mean``).
7. Jaccard: ``s`` is summed in float16, rounded after every term, in
   ascending column order, and ``d_J = 1 - s / (2 - s)`` (both row norms
   taken as 1) in float16.
8. Eq. 12: ``(1 - lambda) d_J`` in float16 plus ``lambda d`` in float32.

The float16 steps matter at 1e-6: the same algorithm in float64 differs
from the released values by up to 4e-3 (6e-2 relative) on the golden
inputs, so they are reproduced. The float32 details (NumPy's ``exp``,
which differs from a correctly rounded one in the last bit for ~40% of
inputs, its pairwise sums, the matrix product's rounding) are reproduced
too, but rarely move a float16 rounding: torch's ``exp`` instead of
NumPy's changed 1 of 25,600 outputs at 80 x 320 and none of the golden
ones. Reproduction therefore holds on the NumPy/BLAS of the machine it
runs on (NumPy's float32 ``exp`` and argsort are the same on its AVX2 and
AVX-512 paths); a float32 matrix product rounded differently (another
BLAS) changes a value by a float16 step now and then.

Size of the difference, measured on synthetic features (D = 512: identity
centre + clothes offset + background and camera offsets shared across
identities + noise, L2-normalised; R@1 / mAP in %). PRCC-CC shape (3,873
queries x 3,384 gallery, 71 ids): cosine 81.9 / 36.3; 20/6/0.3 paper
92.0 / 79.6, released 93.3 / 87.7; 50/15/0.3 paper 96.7 / 88.3, released
97.7 / 93.7. LTCC shape (493 x 7,050, 75 ids, cloth-changing setting):
cosine 64.3 / 21.2; 20/6/0.3 paper 89.9 / 82.6, released 93.3 / 91.5;
50/15/0.3 paper 98.4 / 95.2, released 98.6 / 98.6. With stronger shared
offsets, where re-ranking hurts (PRCC shape, cosine 68.5 / 11.3), the
sign flips: 20/6/0.3 paper 50.4 / 10.8, released 31.3 / 10.1; 50/15/0.3
paper 34.0 / 9.9, released 14.2 / 8.9. Nearly all of it comes from the
row scaling (1., with 5.): at the first PRCC setting, 20/6/0.3 without it
gives 91.7 / 78.5; float64 arithmetic instead of float16 gives
93.4 / 87.7, the paper's rounding and ``>=`` 93.4 / 87.8.

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

``'released'`` has the same structure: the ``Q x G`` float32 result, row
blocks of the pool distances of ~64 MiB (float32 values and their int64
argsort; computed twice, once for the neighbour lists and once for the
values of ``R*``, which reach beyond them), the sparse ``V`` (float16
values), and the Jaccard sums in groups of queries with a float16
``group x G`` accumulator of at most 4 MiB; no ``N x N`` matrix. The
released code itself holds ~24 bytes per pool pair (two float32 distance
matrices, an int64 argsort and its int32 copy, float16 ``V`` and its
expansion): 1.3 GB at the PRCC shape, ~210 GB at MSMT17's 93,820 items.
Measured at the PRCC-CC shape in one process each (2 cores shared): k1/k2
= 20/6, 4.5-5.6 CPU-seconds and ~340 MiB peak growth (the released code:
13 CPU-seconds, 1.1 GiB); 50/15, 7.2 CPU-seconds and ~510 MiB (the
released code: 26 CPU-seconds, 1.1 GiB).
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'DEFAULT_RERANK_MAX_ITEMS', 'RERANK_CONVENTIONS', 'k_reciprocal_rerank'
]

#: Largest pool (queries + gallery) :func:`k_reciprocal_rerank` accepts by
#: default. 50,000 items are ~1.3e12 multiply-adds for the pool distances
#: at D = 512 (minutes on a few cores) and up to a 2.5 GB ``Q x G`` result.
DEFAULT_RERANK_MAX_ITEMS = 50_000

#: The conventions :func:`k_reciprocal_rerank` offers (module doc):
#: ``'paper'``, the paper's equations, and ``'released'``, the values of
#: the authors' released ``re_ranking`` code.
RERANK_CONVENTIONS = ('paper', 'released')

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


def _expanded_pairs(knn: Tensor, half: int,
                    strict: bool) -> Tuple[Tensor, Tensor]:
    """The expanded sets ``R*`` (Eq. 3, 4) as sorted ``(row, col)`` pairs.

    Args:
        knn (Tensor): int64 ``(N, k + 1)`` neighbour lists ``N(p, k)``.
        half (int): The half size ``k / 2`` as the convention rounds it.
        strict (bool): Accept ``R(q, k/2)`` when the overlap is ``>`` two
            thirds of it, evaluated in float64 as the released code writes
            it (``'released'``), instead of ``>=`` (``'paper'``).

    Returns:
        tuple[Tensor, Tensor]: int64 rows and columns of the members,
        row-major, each row's columns ascending and unique.
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
    size = cand_ok.sum(2)
    if strict:
        # 2 / 3 rounds below two thirds in float64, so this is not
        # 3 * overlap > 2 * size for every size: keep the float form
        accept = in_r & (overlap.double() > (2.0 / 3.0) * size.double())
    else:
        accept = in_r & (3 * overlap >= 2 * size)
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
    return key // n, key % n


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


def _row_blocks(n: int, bytes_per_row: int):
    """Near-equal consecutive row ranges of at most ~_BLOCK_BYTES each.

    Equal sizes rather than full blocks plus a remainder: a last block of
    one or a few rows would go through other BLAS kernels (matrix-vector)
    whose float32 rounding differs from the matrix-matrix ones.
    """
    count = -(-n * bytes_per_row // _BLOCK_BYTES)
    size = -(-n // max(1, count))
    return [(s, min(s + size, n)) for s in range(0, n, size)]


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
    for start, stop in _groups(sizes, _PAIR_BUDGET, n):
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
    step = max(1, _ACC_BYTES // (8 * num_g))
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


def k_reciprocal_rerank(
        query_feats: Union[Tensor, np.ndarray],
        gallery_feats: Union[Tensor, np.ndarray],
        k1: int = 20,
        k2: int = 6,
        lambda_value: float = 0.3,
        normalize: bool = True,
        max_items: Optional[int] = DEFAULT_RERANK_MAX_ITEMS,
        convention: str = 'paper') -> Tensor:
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
        convention (str): ``'paper'`` (the equations) or ``'released'``
            (the values of the authors' released code, which published
            re-ranked numbers come from; computed on the CPU); see the
            module doc for every difference. Defaults to ``'paper'``.

    Returns:
        Tensor: float32 ``Q x G`` distances ``d*`` (smaller = more
        similar) on the features' device; rank with ``scores = -d*``.

    Raises:
        ValueError: bad shapes or parameters, an unknown convention, NaN
            features, a pool above ``max_items``, or (``'released'``) an
            item with no other item at a positive distance.
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
    if convention not in RERANK_CONVENTIONS:
        raise ValueError(f'unknown re-ranking convention {convention!r}; '
                         f'choose from {RERANK_CONVENTIONS}')
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
    if convention == 'released':
        # on the CPU in float32, as CLIP-ReID's evaluator runs it (it moves
        # the features to the CPU and L2-normalises them there)
        x = torch.cat([qf.float().cpu(), gf.float().cpu()])
        if torch.isnan(x).any():
            raise ValueError('NaN in the features given to re-ranking')
        if normalize:
            x = F.normalize(x, dim=1)
        return _released_rerank(x, num_q, k1, k2,
                                float(lambda_value)).to(qf.device)
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
