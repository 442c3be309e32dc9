"""The ``'torch'`` backend of :func:`~.ranking.rank_queries`: order keys
of fp32 and float64 scores, and the ranks, AP and INP of one chunk of
queries by a batched binary search and a histogram (steps 1-4 of
:mod:`.ranking`'s module doc), on any device.
"""
from typing import Optional

import torch
from torch import Tensor

from .rank_stats import QueryRanks

_INT64_MIN = torch.iinfo(torch.int64).min


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
