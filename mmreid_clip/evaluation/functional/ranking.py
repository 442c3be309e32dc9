"""Exact, chunked, sort-free ranking statistics for retrieval and ReID.

Every gallery item ``g`` of a query ``q`` gets a score ``s_g`` (the dot
product of the features, or an entry of a given similarity matrix). The
ranking of the gallery is fixed by a total order:

    g is ranked before h  <=>  s_g > s_h  or  (s_g == s_h and g < h),

i.e. a *stable* sort by descending score: ties are broken by ascending
gallery index. This is exactly the order of
``torch.sort(scores, descending=True, stable=True)``; unlike an unstable
argsort (torch on the GPU, NumPy's default quicksort) it does not let tied
scores move R@1 from run to run.

Per query, with ``P_q`` the positives (same label, not junk), ``r_1 < r_2 <
... < r_m`` (``m = |P_q|``) their 1-based ranks after the junk items of the
query have been removed from the ranking:

    CMC_q(K) = 1[r_1 <= K]                      (R@K averages it)
    AP_q     = (1 / m) * sum_{i=1..m} i / r_i   (precision at each positive)
    INP_q    = m / r_m                          (r_m: the hardest positive)

Queries without a positive (``m = 0``) have no value; callers skip them and
average over the others (:func:`summarize`).

How the ranks are found without sorting the gallery. Only the ranks of the
few positives are needed, and the rank of the i-th positive is one plus the
number of non-junk items ranked before it. The code

1. maps every score to an int64 *order key* that is strictly decreasing
   along the ranking (the score's bits made monotone, tie-broken by the
   reversed gallery index; :func:`_fp32_order_keys`), so the order above
   becomes a plain ``>`` on keys;
2. gathers the keys of the ``m`` positives of each query (looked up by label
   in an index of the gallery built once, not by a Q x G comparison) and
   sorts them (a chunk x m sort, cheap);
3. finds for every gallery item ``g`` the number ``u(g)`` of a query's
   sorted positive keys that are ``<= key_g`` with one batched binary search
   (``torch.searchsorted``); ``m - u(g)`` positives are ranked before ``g``;
4. histograms ``u`` per query (junk items go to a bin that is never read)
   and turns the histogram into the ranks by a cumulative sum:

       r_i = #{g not junk : u(g) >= m - i + 1}.

   The item that makes the count is the i-th positive itself (it has
   ``u = m - i + 1``), every positive before it and every negative with at
   most ``i - 1`` positives ranked before it, i.e. ranked before ``p_i``.

This costs O(G log m) per query instead of the O(G log G) of a full sort,
and the c x G work buffers of a chunk of ``c`` queries are the only large
allocations (16 bytes per cell at the peak for fp32 scores): nothing of size
Q x G (scores, argsort indices, labels, matches) is ever built. Results are
exact: integer counts, no tolerance, identical to a stable full sort for any
ties (the tests compare with one).

Two backends run these steps. ``'torch'`` is the tensor code above, on the
device of the inputs (CPU or CUDA). ``'numba'`` (CPU only, the default
there when numba is installed) fuses steps 1-4 into two compiled passes
per row (:mod:`.rank_kernel`): same counts, no buffer besides the scores,
and 3.6x (RSTPReid) to 11.1x (ICFG-PEDES) faster on the test-set shapes'
score matrices (docs/benchmarks.md), because the tensor steps make several
passes over every chunk.

Layout. This module checks the inputs and runs the chunks
(:func:`rank_queries`); beside it are :mod:`.rank_stats` (the per-query
statistics and :func:`summarize`), :mod:`.rank_budget` (memory budget and
chunk size), :mod:`.rank_labels` (label checks and the gallery's label
index), :mod:`.rank_torch` (the ``'torch'`` backend) and
:mod:`.rank_kernel` (the ``'numba'`` one). Every name stays importable
from here.
"""
from typing import Callable, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .rank_budget import (_BYTES_PER_CELL,  # noqa: F401
                          _BYTES_PER_CELL_NUMBA, DEFAULT_MEMORY_BUDGET,
                          auto_chunk_size)
from .rank_kernel import HAS_NUMBA, rank_rows
from .rank_labels import ArrayLike, _as_labels, _GalleryIndex
from .rank_stats import QueryRanks, summarize
from .rank_torch import (_INT64_MIN, _fp32_order_keys,  # noqa: F401
                         _level_order_keys, _rank_chunk)

__all__ = [
    'QueryRanks', 'JunkFn', 'LabelJunkFn', 'DEFAULT_MEMORY_BUDGET',
    'auto_chunk_size', 'rank_queries', 'summarize', 'RANK_BACKENDS'
]

#: Accepted values of ``rank_queries(backend=...)``.
RANK_BACKENDS = ('auto', 'numba', 'torch')

#: Signature of the junk callback: given the rows ``query_slice`` of the
#: current chunk, return a bool tensor ``(n, G)`` (True = junk: removed from
#: the ranking, neither positive nor negative), or None for no junk.
JunkFn = Callable[[slice], Optional[Tensor]]

#: Signature of the label-restricted junk callback: given ``query_slice``
#: and ``cols``, the int64 ``(n, M)`` gallery indices of the items that
#: share each query's label, return a bool ``(n, M)`` tensor (True = junk).
LabelJunkFn = Callable[[slice, Tensor], Tensor]


def _resolve_backend(backend: str, device: torch.device) -> str:
    """'numba' or 'torch' for ``backend`` on ``device`` (see rank_queries)."""
    if backend not in RANK_BACKENDS:
        raise ValueError(f'backend must be one of {RANK_BACKENDS}, got '
                         f'{backend!r}')
    if backend == 'auto':
        return 'numba' if HAS_NUMBA and device.type == 'cpu' else 'torch'
    if backend == 'numba':
        if device.type != 'cpu':
            raise ValueError("backend='numba' runs on the CPU only; got "
                             f'inputs on {device} (use backend=\'torch\')')
        if not HAS_NUMBA:
            raise ImportError("backend='numba' needs numba (pip install "
                              "numba), or use backend='torch'")
    return backend


def rank_queries(query_feats: Optional[Tensor] = None,
                 gallery_feats: Optional[Tensor] = None,
                 query_labels: Optional[ArrayLike] = None,
                 gallery_labels: Optional[ArrayLike] = None,
                 scores: Optional[Union[Tensor, np.ndarray]] = None,
                 junk_fn: Optional[JunkFn] = None,
                 label_junk_fn: Optional[LabelJunkFn] = None,
                 chunk_size: Optional[int] = None,
                 normalize: bool = False,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 backend: str = 'auto') -> QueryRanks:
    """First-positive rank, AP, INP and number of positives of every query.

    Give either features (scores ``s = q . g``, computed chunk by chunk) or a
    precomputed ``Q x G`` score matrix (larger = more similar). Positives of
    a query are the non-junk gallery items with its label. The ranking is
    the stable descending order of the scores, ties broken by ascending
    gallery index; with ``r_1 < ... < r_m`` the positives' ranks once the
    query's junk is removed (module doc):

        first_rank_q = r_1,  AP_q = (1/m) sum_i i / r_i,  INP_q = m / r_m.

    The work runs on the device of the features / scores (CPU or CUDA) in
    chunks of ``chunk_size`` queries; the only large buffers are
    ``chunk x G``, and there is no Python loop over queries.

    Note:
        Scores are evaluated in float32 (fp16/bf16 are upcast exactly), or in
        float64 when an input is float64. With features, the matrix product
        of a chunk may round a dot product differently for another
        ``chunk_size`` (BLAS blocking), which can only reorder scores equal
        to within an ulp; with a score matrix the result does not depend on
        ``chunk_size`` at all.

    Args:
        query_feats (Tensor, optional): ``Q x D`` query features.
        gallery_feats (Tensor, optional): ``G x D`` gallery features.
        query_labels (Tensor | ndarray | sequence): Q integer labels (pids).
            Required.
        gallery_labels (Tensor | ndarray | sequence): G integer labels.
            Required.
        scores (Tensor | ndarray, optional): ``Q x G`` similarities instead
            of features; only row chunks of it are copied.
        junk_fn (callable, optional): ``junk_fn(query_slice)`` returns a
            bool ``(n, G)`` tensor, or None, for the ``n`` queries
            ``query_slice`` (a ``slice`` with step 1): True marks gallery
            items removed from that query's ranking, neither positive nor
            negative (ReID same-camera / same-clothes rules).
        label_junk_fn (callable, optional): Junk that only removes items
            sharing the query's label (every ReID rule: junk is always
            "same pid and ..."): ``label_junk_fn(query_slice, cols)`` gets
            the ``(n, M)`` gallery indices of the items with each query's
            label (padding entries are ignored) and returns a bool ``(n,
            M)`` tensor, True = junk. O(M) per query where ``junk_fn`` is
            O(G); the two may be combined.
        chunk_size (int, optional): Queries per chunk; None picks it with
            :func:`auto_chunk_size` from ``memory_budget``.
        normalize (bool): L2-normalise the features first (cosine
            similarity). Ignored with ``scores``. Defaults to False: the
            models already return normalised features.
        memory_budget (int): Bytes for the chunk buffers when
            ``chunk_size`` is None. Defaults to 256 MiB.
        backend (str): ``'numba'`` (compiled fused pass, CPU only),
            ``'torch'`` (tensor ops, any device) or ``'auto'``: numba for
            CPU inputs when it is installed, torch otherwise. The ranks
            are identical; AP and INP may differ in the last bits (their
            float64 sums run in another order).

    Returns:
        QueryRanks: per-query tensors on the compute device.

    Raises:
        ValueError: missing or inconsistent inputs, or NaN scores.
        TypeError: non-float scores/features or non-integer labels.
    """
    if query_labels is None or gallery_labels is None:
        raise ValueError('query_labels and gallery_labels are required')
    use_feats = query_feats is not None or gallery_feats is not None
    if use_feats == (scores is not None) or (
            use_feats and (query_feats is None or gallery_feats is None)):
        raise ValueError('give either both query_feats and gallery_feats, '
                         'or scores')
    if use_feats:
        if query_feats.dim() != 2 or gallery_feats.dim() != 2:
            raise ValueError('features must be 2-D (N x D), got query '
                             f'{tuple(query_feats.shape)} and gallery '
                             f'{tuple(gallery_feats.shape)}')
        if query_feats.size(1) != gallery_feats.size(1):
            raise ValueError(f'query features are {query_feats.size(1)}-d '
                             'but gallery features are '
                             f'{gallery_feats.size(1)}-d')
        if not (query_feats.is_floating_point()
                and gallery_feats.is_floating_point()):
            raise TypeError('features must be floating point')
        device = query_feats.device
        dtype = (
            torch.float64 if torch.float64
            in (query_feats.dtype, gallery_feats.dtype) else torch.float32)
        query_feats = query_feats.to(dtype)
        gallery_feats = gallery_feats.to(device=device, dtype=dtype)
        if normalize:
            query_feats = F.normalize(query_feats, dim=1)
            gallery_feats = F.normalize(gallery_feats, dim=1)
        num_query, num_gallery = query_feats.size(0), gallery_feats.size(0)
    else:
        scores = torch.as_tensor(scores)
        if scores.dim() != 2:
            raise ValueError('scores must be 2-D (Q x G), got shape '
                             f'{tuple(scores.shape)}')
        if not scores.is_floating_point():
            raise TypeError(f'scores must be floating point, got '
                            f'{scores.dtype}')
        device = scores.device
        dtype = (
            torch.float64 if scores.dtype == torch.float64 else torch.float32)
        num_query, num_gallery = scores.shape
    if num_gallery >= 2**31:
        raise ValueError('galleries of 2**31 items or more are not supported')
    backend = _resolve_backend(backend, device)

    q_labels = _as_labels(query_labels, 'query_labels', num_query, device)
    g_labels = _as_labels(gallery_labels, 'gallery_labels', num_gallery,
                          device)
    if chunk_size is None:
        chunk_size = auto_chunk_size(num_gallery, memory_budget, dtype,
                                     backend)
    elif int(chunk_size) < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    chunk_size = int(chunk_size)
    if num_query == 0 or num_gallery == 0:
        # nothing to rank: every query is without positives
        zeros_i = torch.zeros(num_query, dtype=torch.int64, device=device)
        zeros_f = torch.zeros(num_query, dtype=torch.float64, device=device)
        return QueryRanks(zeros_i, zeros_f, zeros_f.clone(), zeros_i.clone())
    # the tensor path's tie-break keys; the kernel compares indices directly
    rev_index = None if backend == 'numba' else torch.arange(
        num_gallery - 1, -1, -1, dtype=torch.int64, device=device)
    gallery_index = _GalleryIndex(g_labels)

    def nan_error(rows: slice, bad_rows: Tensor) -> None:
        what = 'features' if use_feats else 'scores'
        bad = (torch.nonzero(bad_rows).flatten() + rows.start).tolist()
        shown = ', '.join(map(str, bad[:8])) + (
            f' (+{len(bad) - 8} more)' if len(bad) > 8 else '')
        raise ValueError(f'NaN scores for queries {rows.start}..'
                         f'{rows.stop - 1} ({len(bad)} of them: query '
                         f'{shown}): check the {what} (a NaN or Inf feature '
                         f'gives NaN scores)')

    def chunk_scores(rows: slice) -> Tensor:
        """The rows' scores in a fresh contiguous buffer, checked for NaN."""
        if use_feats:
            block = query_feats[rows] @ gallery_feats.t()
        elif backend == 'numba':
            # read in place (the kernel does not write): a copy only for a
            # strided or non-fp32/fp64 matrix
            block = scores[rows].to(dtype).contiguous()
        else:
            # an owned copy: the chunk overwrites it, whatever its layout
            block = torch.empty((rows.stop - rows.start, num_gallery),
                                dtype=dtype,
                                device=device)
            block.copy_(scores[rows])
        if backend == 'numba':
            return block  # the kernel counts the NaNs in its first pass
        # one cheap reduction instead of an isnan pass: the sum is NaN when
        # any score is (or when +inf meets -inf, hence the exact re-check)
        if torch.isnan(block.sum()) and torch.isnan(block).any():
            nan_error(rows, torch.isnan(block).any(1).cpu())
        return block

    parts = []
    for start in range(0, num_query, chunk_size):
        rows = slice(start, min(start + chunk_size, num_query))
        n = rows.stop - rows.start
        pos_cols, pos_valid = gallery_index.lookup(q_labels[rows])
        junk = None if junk_fn is None else junk_fn(rows)
        if junk is not None:
            junk = torch.as_tensor(junk, device=device)
            if junk.dtype != torch.bool or junk.shape != (n, num_gallery):
                raise ValueError(
                    f'junk_fn({rows}) must return a bool tensor of shape '
                    f'{(n, num_gallery)}, got {junk.dtype} '
                    f'{tuple(junk.shape)}')
            if pos_cols.numel():
                pos_valid &= ~junk.gather(1, pos_cols)
        label_junk = None
        if label_junk_fn is not None:
            label_junk = torch.as_tensor(
                label_junk_fn(rows, pos_cols), device=device)
            if (label_junk.dtype != torch.bool
                    or label_junk.shape != pos_cols.shape):
                raise ValueError(
                    f'label_junk_fn({rows}, cols) must return a bool tensor '
                    f'shaped like cols {tuple(pos_cols.shape)}, got '
                    f'{label_junk.dtype} {tuple(label_junk.shape)}')
            if backend == 'numba':
                # in NumPy: the c x M tensor ops would be split over
                # torch's intra-op threads, each waiting for a descheduled
                # thread on a loaded machine (see
                # rank_labels._GalleryIndex._lookup_numpy); pos_valid is
                # the lookup's own buffer, the callback's is not written
                valid_np = pos_valid.numpy()
                junk_np = np.logical_and(label_junk.numpy(), valid_np)
                valid_np &= ~junk_np
                label_junk = torch.from_numpy(junk_np)
            else:
                label_junk &= pos_valid
                pos_valid &= ~label_junk
                # the tensor path takes junk as a mask
                # (the padding points at item 0: only the True entries
                # may land on real columns, the rest go to a spare one)
                dense = torch.zeros((n, num_gallery + 1),
                                    dtype=torch.bool,
                                    device=device)
                dense.scatter_(
                    1, torch.where(label_junk, pos_cols, num_gallery),
                    label_junk)
                dense = dense[:, :num_gallery]
                junk = dense if junk is None else junk.logical_or_(dense)
        if backend == 'numba':
            state = pos_valid.numpy().astype(np.int8)
            if label_junk is not None:
                state[label_junk.numpy()] = 2
            *stats, num_nan = rank_rows(
                chunk_scores(rows).numpy(),
                pos_cols.numpy(),
                state,
                None if junk is None else junk.numpy(),
                num_threads=torch.get_num_threads())
            if num_nan.any():
                nan_error(rows, torch.from_numpy(num_nan > 0))
            parts.append(QueryRanks(*map(torch.from_numpy, stats)))
        else:
            # the scores are passed without a local name here, so that
            # _rank_chunk can free them as soon as their keys exist
            parts.append(
                _rank_chunk(
                    chunk_scores(rows), pos_cols, pos_valid, junk,
                    rev_index))
        del junk

    return QueryRanks(*(torch.cat(field) for field in zip(*parts)))
