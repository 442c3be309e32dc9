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

Layout. This module checks the arguments and picks the convention
(:func:`k_reciprocal_rerank`); the parts live beside it:
:mod:`.rerank_paper` (the ``'paper'`` convention), :mod:`.rerank_released`
(the ``'released'`` one), :mod:`.rerank_sets` (the sets ``R*`` both use)
and :mod:`.rerank_chunks` (block sizes, budgets and CSR helpers). Their
private names stay importable from here; the budgets are read from
:mod:`.rerank_chunks`, so patch them there.
"""
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# the algorithm's parts live in their own modules; their names stay
# importable from here
from .rerank_chunks import (_ACC_BYTES, _BLOCK_BYTES, _PAIR_BUDGET,  # noqa
                            _expand, _groups, _pointer, _row_blocks)
from .rerank_paper import (_jaccard_rerank, _k_reciprocal_features,  # noqa
                           _neighbours, _pair_distances, _query_expansion)
from .rerank_released import (_drop_zeros, _released_distances,  # noqa
                              _released_features, _released_jaccard,
                              _released_neighbours, _released_pair_values,
                              _released_query_expansion, _released_rerank)
from .rerank_sets import _expanded_pairs, _reciprocal  # noqa

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
