"""Exact, chunked ranking metrics: CMC / R@K, AP and INP per query.

Definitions (``datasets-and-protocols.md`` §5): for query q the gallery is
ranked by decreasing similarity; positives P_q are the gallery items with the
query's label. With r_1 < r_2 < ... the (1-based) ranks of the positives,

* CMC_q(K) = 1[r_1 <= K]                        (R@K averages it)
* AP_q     = (1/|P_q|) * sum_i i / r_i
* INP_q    = |P_q| / r_last                     (Ye et al., TPAMI 2021)

Queries without a positive are reported as invalid and excluded from the
averages. Junk gallery items (e.g. same identity and camera in ReID) are
removed from a query's ranking: they are neither positives nor negatives and
do not occupy ranks.

Ties are broken deterministically: equal scores keep ascending gallery index
order (a stable descending sort), so results do not depend on the device or
on the sort algorithm.

Memory: queries are processed in chunks whose size follows a cell budget, so
the peak is O(chunk x G) instead of the several Q x G int64 arrays peer
evaluators build (13-16 GB at ICFG-PEDES size).
"""
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

# about 18 bytes per cell are live at once (scores, sorted scores, int64
# order, masks): 2**24 cells keep a chunk near 300 MB
DEFAULT_CELL_BUDGET = 1 << 24

JunkFn = Callable[[slice], Optional[torch.Tensor]]


class QueryRanks(NamedTuple):
    """Per-query results of :func:`rank_queries`.

    Attributes:
        first_rank (Tensor): Q int64, 1-based rank of the first positive,
            0 when the query has no positive.
        ap (Tensor): Q float64 average precision (0 without positives).
        inp (Tensor): Q float64 inverse negative penalty (0 without
            positives).
        num_pos (Tensor): Q int64 number of positives after junk removal.
    """
    first_rank: torch.Tensor
    ap: torch.Tensor
    inp: torch.Tensor
    num_pos: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """Queries that have at least one positive."""
        return self.num_pos > 0


def _rank_chunk(scores: torch.Tensor, pos: torch.Tensor,
                junk: Optional[torch.Tensor]) -> QueryRanks:
    """Ranks of one chunk of queries (rows of ``scores``)."""
    if junk is not None:
        # junk sinks below every real score; a stable sort keeps it after
        # all valid items, so it cannot change any valid item's rank
        scores = scores.masked_fill(junk, float('-inf'))
        pos = pos & ~junk
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    hits = torch.gather(pos, 1, order)
    rows, cols = hits.nonzero(as_tuple=True)  # row-major: ranks ascending
    n = scores.size(0)
    num_pos = hits.sum(dim=1)
    first_rank = torch.zeros(n, dtype=torch.long, device=scores.device)
    ap = torch.zeros(n, dtype=torch.float64, device=scores.device)
    inp = torch.zeros(n, dtype=torch.float64, device=scores.device)
    if rows.numel():
        rank = (cols + 1).double()
        # i-th positive of its row (1-based): offset from the row's first hit
        row_start = torch.cumsum(num_pos, 0) - num_pos
        ith = (torch.arange(rows.numel(), device=rows.device) -
               row_start[rows] + 1).double()
        ap.index_add_(0, rows, ith / rank)
        valid = num_pos > 0
        ap[valid] /= num_pos[valid].double()
        first_rank[valid] = cols[row_start[valid]] + 1
        last = cols[row_start[valid] + num_pos[valid] - 1] + 1
        inp[valid] = num_pos[valid].double() / last.double()
    return QueryRanks(first_rank, ap, inp, num_pos)


def auto_chunk_size(num_gallery: int,
                    cell_budget: int = DEFAULT_CELL_BUDGET) -> int:
    """Queries per chunk so that a chunk holds about ``cell_budget`` cells."""
    return max(1, cell_budget // max(1, num_gallery))


def rank_queries(query_feats: Optional[torch.Tensor] = None,
                 gallery_feats: Optional[torch.Tensor] = None,
                 query_labels: Optional[torch.Tensor] = None,
                 gallery_labels: Optional[torch.Tensor] = None,
                 scores: Optional[torch.Tensor] = None,
                 junk_fn: Optional[JunkFn] = None,
                 chunk_size: Optional[int] = None,
                 normalize: bool = False) -> QueryRanks:
    """Rank a gallery for every query and measure each ranking.

    Either give features (similarity = dot product, computed chunk by
    chunk) or a precomputed ``scores`` matrix (Q x G, higher is better).

    Args:
        query_feats (Tensor, optional): Q x D.
        gallery_feats (Tensor, optional): G x D.
        query_labels (Tensor): Q identity labels.
        gallery_labels (Tensor): G identity labels.
        scores (Tensor, optional): Q x G similarities instead of features.
        junk_fn (callable, optional): Given the slice of query rows of a
            chunk, returns a (chunk x G) bool mask of junk items, or None.
        chunk_size (int, optional): Queries per chunk; by default from a
            ~300 MB budget.
        normalize (bool): L2-normalise the features first (cosine).

    Returns:
        QueryRanks: per-query first-positive rank, AP, INP, #positives.
    """
    if query_labels is None or gallery_labels is None:
        raise ValueError('query_labels and gallery_labels are required')
    if scores is None:
        if query_feats is None or gallery_feats is None:
            raise ValueError('give query_feats and gallery_feats, or scores')
        if query_feats.size(1) != gallery_feats.size(1):
            raise ValueError(
                f'query features are {query_feats.size(1)}-d but gallery '
                f'features are {gallery_feats.size(1)}-d')
        if normalize:
            query_feats = F.normalize(query_feats.float(), dim=1)
            gallery_feats = F.normalize(gallery_feats.float(), dim=1)
        num_q, num_g = query_feats.size(0), gallery_feats.size(0)
        gallery_t = gallery_feats.float().t()
    else:
        num_q, num_g = scores.shape
    if query_labels.numel() != num_q or gallery_labels.numel() != num_g:
        raise ValueError(
            f'{query_labels.numel()} query labels for {num_q} queries or '
            f'{gallery_labels.numel()} gallery labels for {num_g} items')
    if num_g == 0:
        raise ValueError('the gallery is empty')
    chunk = chunk_size or auto_chunk_size(num_g)
    parts = []
    g_labels = gallery_labels.view(1, -1)
    for start in range(0, num_q, chunk):
        rows = slice(start, min(start + chunk, num_q))
        if scores is None:
            block = query_feats[rows].float() @ gallery_t
        else:
            block = scores[rows].float()
        pos = query_labels[rows].view(-1, 1) == g_labels
        junk = junk_fn(rows) if junk_fn is not None else None
        parts.append(_rank_chunk(block, pos, junk))
    return QueryRanks(*(torch.cat(field) for field in zip(*parts)))


def summarize(ranks: QueryRanks,
              topk: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """Average per-query results over the valid queries, in percent.

    Returns:
        dict: ``R@K`` for each K, ``mAP``, ``mINP``, plus ``num_valid``
        and ``num_invalid`` query counts.
    """
    valid = ranks.valid
    n = int(valid.sum())
    out: Dict[str, float] = {}
    if n == 0:
        raise ValueError('no query has a positive in the gallery')
    first = ranks.first_rank[valid]
    for k in topk:
        out[f'R@{k}'] = 100.0 * float((first <= k).double().mean())
    out['mAP'] = 100.0 * float(ranks.ap[valid].mean())
    out['mINP'] = 100.0 * float(ranks.inp[valid].mean())
    out['num_valid'] = n
    out['num_invalid'] = int((~valid).sum())
    return out
