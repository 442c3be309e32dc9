"""The per-query ranking statistics (:class:`QueryRanks`: first-positive
rank, AP, INP, number of positives) and their averages over the queries
with a positive (:func:`summarize`: R@K, mAP, mINP); :mod:`.ranking`
computes them.
"""
from typing import Dict, NamedTuple, Sequence

import numpy as np
from torch import Tensor


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
    if ranks.num_pos.device.type == 'cpu':
        # NumPy views of the CPU tensors: these Q-long reductions are too
        # small to gain from torch's intra-op threads, and on a loaded
        # machine torch's thread hand-offs made them cost 20-25 ms at PRCC
        # with 2 threads (the ranking itself takes 40-70 ms)
        first, ap, inp, num_pos = (
            t.numpy() for t in (ranks.first_rank, ranks.ap, ranks.inp,
                                ranks.num_pos))
        valid = num_pos > 0
        num_valid = int(np.count_nonzero(valid))
    else:
        first, ap, inp = ranks.first_rank, ranks.ap, ranks.inp
        valid = ranks.valid
        num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            f'none of the {len(valid)} queries has a positive in the '
            'gallery: the query and gallery labels do not overlap (or junk '
            'removed every positive)')
    first = first[valid]
    # R@K: an exact count over the valid queries (the same value from
    # either library); mAP and mINP: float64 means
    out: Dict[str, float] = {
        f'R@{k}': 100.0 * (int((first <= k).sum()) / num_valid)
        for k in topk
    }
    out['mAP'] = 100.0 * float(ap[valid].sum() / num_valid)
    out['mINP'] = 100.0 * float(inp[valid].sum() / num_valid)
    out['num_valid'] = num_valid
    out['num_invalid'] = len(valid) - num_valid
    return out
