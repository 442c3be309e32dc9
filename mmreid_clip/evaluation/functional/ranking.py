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
"""
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .rank_kernel import HAS_NUMBA, rank_rows

__all__ = [
    'QueryRanks', 'JunkFn', 'LabelJunkFn', 'DEFAULT_MEMORY_BUDGET',
    'auto_chunk_size', 'rank_queries', 'summarize', 'RANK_BACKENDS'
]

#: Accepted values of ``rank_queries(backend=...)``.
RANK_BACKENDS = ('auto', 'numba', 'torch')

ArrayLike = Union[Tensor, np.ndarray, Sequence]

#: Signature of the junk callback: given the rows ``query_slice`` of the
#: current chunk, return a bool tensor ``(n, G)`` (True = junk: removed from
#: the ranking, neither positive nor negative), or None for no junk.
JunkFn = Callable[[slice], Optional[Tensor]]

#: Signature of the label-restricted junk callback: given ``query_slice``
#: and ``cols``, the int64 ``(n, M)`` gallery indices of the items that
#: share each query's label, return a bool ``(n, M)`` tensor (True = junk).
LabelJunkFn = Callable[[slice, Tensor], Tensor]

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

_INT64_MIN = torch.iinfo(torch.int64).min


class QueryRanks(NamedTuple):
    """Per-query ranking statistics (1-D tensors of length Q).

    Attributes:
        first_rank (Tensor): int64, the 1-based rank of the first positive
            (junk removed); 0 for a query without positives. CMC/R@K of a
            query is ``first_rank <= K``.
        ap (Tensor): float64 average precision; 0 without positives.
        inp (Tensor): float64 inverse negative penalty ``m / r_m``; 0
            without positives.
        num_pos (Tensor): int64 number of positives ``m`` (non-junk items
            with the query's label). Queries with 0 are to be skipped.
    """
    first_rank: Tensor
    ap: Tensor
    inp: Tensor
    num_pos: Tensor

    @property
    def valid(self) -> Tensor:
        """Bool mask of the queries that have at least one positive."""
        return self.num_pos > 0


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


def _as_labels(labels: ArrayLike, name: str, length: int,
               device: torch.device) -> Tensor:
    """1-D integer label tensor on ``device``, checked against ``length``."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() != length:
        raise ValueError(f'{name} must be 1-D with {length} entries (one per '
                         f'row/column of the scores), got shape '
                         f'{tuple(labels.shape)}')
    # an empty list becomes a float tensor: there is no label to misread
    if labels.numel() and (labels.is_floating_point() or labels.is_complex()):
        raise TypeError(f'{name} must hold integer labels, got {labels.dtype}')
    return labels.to(device=device, dtype=torch.int64)


class _GalleryIndex:
    """The gallery items of every label, to look positives up per query.

    Building a ``chunk x G`` label-equality mask and extracting its nonzeros
    would cost three passes over every chunk; instead the gallery indices
    are grouped by label once (CSR layout: ``members[start_k : start_k +
    count_k]`` are the items of the k-th distinct label, ascending), and a
    chunk gathers its queries' groups into a ``chunk x M`` table, ``M`` the
    largest group among them (a few to a few hundred in practice; a label
    that covers most of the gallery would make these tables, and the chunk's
    memory, grow towards ``chunk x G``).

    Args:
        gallery_labels (Tensor): ``(G,)`` integer labels, ``G >= 1``.
    """

    def __init__(self, gallery_labels: Tensor) -> None:
        self.labels, inverse, self.counts = torch.unique(
            gallery_labels, return_inverse=True, return_counts=True)
        self.starts = self.counts.cumsum(0) - self.counts
        # stable: items of one label stay in ascending gallery order
        self.members = torch.argsort(inverse, stable=True)

    def lookup(self, query_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Gallery items sharing each query's label.

        Args:
            query_labels (Tensor): ``(c,)`` labels of a chunk of queries.

        Returns:
            tuple[Tensor, Tensor]: ``cols`` int64 ``(c, M)`` gallery indices
            (padding points at item 0) and ``valid`` bool ``(c, M)``, True
            on real entries.
        """
        last = self.labels.numel() - 1
        k = torch.searchsorted(self.labels, query_labels).clamp_(max=last)
        found = self.labels[k] == query_labels
        count = torch.where(found, self.counts[k], 0)
        width = int(count.max()) if count.numel() else 0
        slots = torch.arange(width, device=query_labels.device)
        valid = slots[None, :] < count[:, None]
        where = (self.starts[k][:, None] +
                 slots[None, :]).clamp_(max=self.members.numel() - 1)
        cols = torch.where(valid, self.members[where], 0)
        return cols, valid


def _fp32_order_keys(scores: Tensor, rev_index: Tensor) -> Tensor:
    """int64 keys, decreasing along the ranking, of fp32 scores (in place).

    An IEEE-754 float's bit pattern read as an int32 is ordered like the
    float for non-negative values and in reverse for negative ones; flipping
    the 31 magnitude bits of the negative patterns makes the int order equal
    the float order everywhere. ``-0.0`` is first mapped to ``+0.0``
    (``-0.0 + 0.0 = +0.0`` in IEEE arithmetic): the two compare equal as
    floats and must tie. The key is then

        key_g = bits(s_g) * 2**32 + (G - 1 - g),

    so a larger key means "ranked earlier", with ties going to the smaller
    gallery index, and all keys of a row are distinct.

    Args:
        scores (Tensor): Contiguous float32 ``(c, G)``, without NaN;
            overwritten.
        rev_index (Tensor): int64 ``(G,)`` holding ``G - 1 - g``.

    Returns:
        Tensor: int64 ``(c, G)`` keys.
    """
    bits = scores.add_(0.0).view(torch.int32)
    sign = bits >> 31  # arithmetic shift: -1 for negative floats, 0 otherwise
    bits ^= sign.bitwise_and_(0x7FFFFFFF)
    del sign
    keys = torch.empty(bits.shape, dtype=torch.int64, device=bits.device)
    keys.copy_(bits)
    # the low 32 bits are zero after the shift; G - 1 - g < 2**31 fills them
    return keys.bitwise_left_shift_(32).bitwise_or_(rev_index)


def _level_order_keys(scores: Tensor, pos_cols: Tensor, pos_valid: Tensor,
                      num_pos: Tensor, rev_index: Tensor) -> Tensor:
    """int64 order keys for scores of any float dtype (used for float64).

    64-bit scores leave no room for the index in an int64, so the score is
    replaced by its *level* relative to the query's positives, which keeps
    every comparison between an item and a positive (all the algorithm
    needs): with ``lo_g = #{p in P_q : s_p < s_g}`` and ``eq_g = 1`` when some
    positive scores exactly ``s_g``,

        level_g = 2 * lo_g + eq_g,    key_g = level_g * G + (G - 1 - g).

    For an item g and a positive p: ``s_g > s_p`` gives ``lo_g >= lo_p + 1``
    hence ``level_g > level_p = 2 lo_p + 1``; ``s_g == s_p`` gives equal
    levels (ties then go to the smaller index, as in the fp32 keys);
    ``s_g < s_p`` gives ``level_g < level_p``.

    Args:
        scores (Tensor): ``(c, G)`` scores without NaN, not modified.
        pos_cols (Tensor): int64 ``(c, M)`` gallery indices of positives.
        pos_valid (Tensor): bool ``(c, M)``, True on real positives.
        num_pos (Tensor): ``(c,)`` positives per row.
        rev_index (Tensor): int64 ``(G,)`` holding ``G - 1 - g``.

    Returns:
        Tensor: int64 ``(c, G)`` keys.
    """
    width = pos_cols.size(1)
    # +inf padding is never "< s", so searchsorted(left) counts only real
    # positives below s; ``lo <= num_pos`` follows.
    pos_scores = scores.gather(1, pos_cols).masked_fill_(
        ~pos_valid, float('inf')).sort(dim=1).values
    lo = torch.searchsorted(pos_scores, scores)
    at_lo = pos_scores.gather(1, lo.clamp(max=width - 1))
    eq = (at_lo == scores) & (lo < num_pos[:, None])
    del at_lo
    return lo.mul_(2).add_(eq).mul_(scores.size(1)).add_(rev_index)


def _rank_chunk(scores: Tensor, pos_cols: Tensor, pos_valid: Tensor,
                junk: Optional[Tensor], rev_index: Tensor) -> QueryRanks:
    """Ranking statistics of one chunk of queries (see the module doc).

    Args:
        scores (Tensor): ``(c, G)`` contiguous scores without NaN, owned by
            the callee (fp32 ones are overwritten).
        pos_cols (Tensor): int64 ``(c, M)`` gallery indices of the items
            with the query's label.
        pos_valid (Tensor): bool ``(c, M)``, True on the real positives
            (not padding, not junk).
        junk (Tensor, optional): bool ``(c, G)``, items to drop.
        rev_index (Tensor): int64 ``(G,)`` holding ``G - 1 - g``.

    Returns:
        QueryRanks: the chunk's rows.
    """
    c = scores.size(0)
    device = scores.device
    num_pos = pos_valid.sum(dim=1)
    m_max = int(num_pos.max()) if c else 0
    if m_max == 0:
        zeros = torch.zeros(c, dtype=torch.float64, device=device)
        return QueryRanks(num_pos.clone(), zeros, zeros.clone(), num_pos)

    if scores.dtype == torch.float32:
        keys = _fp32_order_keys(scores, rev_index)
    else:
        keys = _level_order_keys(scores, pos_cols, pos_valid, num_pos,
                                 rev_index)
    del scores

    # Sorted positive keys, padded with INT64_MIN (below every real key, so
    # sorted to the front and always counted as "<= key"): with M columns,
    # M - u(g) is the number of *real* positives ranked before g whatever
    # m_q is. Only the last m_max columns can hold real keys.
    width = pos_cols.size(1)
    pos_keys = keys.gather(1, pos_cols).masked_fill_(~pos_valid, _INT64_MIN)
    pos_keys = pos_keys.sort(dim=1).values[:, width - m_max:].contiguous()
    below = torch.searchsorted(pos_keys, keys, right=True)
    del keys
    if junk is not None:
        below.masked_fill_(junk, m_max + 1)  # a bin that is never summed

    hist = torch.zeros(c, m_max + 2, dtype=torch.int64, device=device)
    hist.scatter_add_(
        1, below,
        torch.ones((), dtype=torch.int64, device=device).expand_as(below))
    del below
    # ranks[:, i-1] = r_i = #{g not junk: u(g) >= m_max - i + 1}
    ranks = hist[:, 1:m_max + 1].flip(1).cumsum(1)

    order = torch.arange(1, m_max + 1, device=device)
    is_pos = order[None, :] <= num_pos[:, None]
    precision = torch.where(is_pos,
                            order.double()[None, :] / ranks.double(), 0.)
    has_pos = num_pos > 0
    ap = precision.sum(1) / num_pos.clamp(min=1).double()
    last = ranks.gather(1, (num_pos - 1).clamp(min=0)[:, None]).squeeze(1)
    inp = torch.where(has_pos, num_pos.double() / last.double(), 0.)
    first = torch.where(has_pos, ranks[:, 0], 0)
    return QueryRanks(first, ap, inp, num_pos)


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
            label_junk &= pos_valid
            pos_valid &= ~label_junk
            if backend == 'torch':
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
            state = pos_valid.to(torch.int8)
            if label_junk is not None:
                state.masked_fill_(label_junk, 2)
            *stats, num_nan = rank_rows(
                chunk_scores(rows).numpy(),
                pos_cols.numpy(),
                state.numpy(),
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


def summarize(ranks: QueryRanks,
              topk: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """Average the per-query statistics over the queries with a positive.

    With ``V`` the queries that have at least one positive, in percent:

        R@K  = 100/|V| * sum_{q in V} 1[first_rank_q <= K]
        mAP  = 100/|V| * sum_{q in V} AP_q
        mINP = 100/|V| * sum_{q in V} INP_q

    Args:
        ranks (QueryRanks): From :func:`rank_queries`.
        topk (Sequence[int]): The K of the R@K entries.

    Returns:
        dict: ``'R@K'`` for each K, ``'mAP'``, ``'mINP'`` (floats, percent),
        ``'num_valid'`` and ``'num_invalid'`` (queries without a positive,
        left out of the averages) as ints.

    Raises:
        ValueError: no query has a positive (the averages are undefined).
    """
    valid = ranks.valid
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            f'none of the {valid.numel()} queries has a positive in the '
            'gallery: the query and gallery labels do not overlap (or junk '
            'removed every positive)')
    first = ranks.first_rank[valid]
    out: Dict[str, float] = {
        f'R@{k}': 100.0 * float((first <= k).double().mean())
        for k in topk
    }
    out['mAP'] = 100.0 * float(ranks.ap[valid].mean())
    out['mINP'] = 100.0 * float(ranks.inp[valid].mean())
    out['num_valid'] = num_valid
    out['num_invalid'] = int(valid.numel()) - num_valid
    return out
