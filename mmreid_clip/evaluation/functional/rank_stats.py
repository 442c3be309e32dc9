"""The per-query ranking statistics (:class:`QueryRanks`: first-positive
rank, AP, INP, number of positives) and their averages over the queries
with a positive (:func:`summarize`: R@K, mAP, mINP); :mod:`.ranking`
computes them.
"""
from typing import Dict, NamedTuple, Sequence

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
