"""The expanded k-reciprocal sets ``R*`` of re-ranking (Eqs. 3 and 4 of
:mod:`.reranking`), built from the neighbour lists; shared by the
``'paper'`` and ``'released'`` conventions, which differ only in how they
round ``k/2`` and compare the overlap.
"""
from typing import Tuple

import torch
from torch import Tensor


def _reciprocal(knn: Tensor) -> Tensor:
    """Bool ``(N, k + 1)``: is ``knn[i, t]`` a k-reciprocal neighbour of i?

    ``j = knn[i, t]`` qualifies when ``i`` is in ``N(j, k)`` (Eq. 3), looked
    up in ``j``'s own row of ``knn``.
    """
    own = torch.arange(knn.size(0), device=knn.device)[:, None, None]
    return (knn[knn] == own).any(dim=2)


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
