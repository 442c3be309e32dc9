"""Vectorised ReID evaluators of the peer codebases, for ``benchmark.py``.

Section ``reid`` of ``benchmark.py`` compares the project's ReID metric
with the evaluators that published cloth-changing and CLIP ReID numbers
come from. Both are re-implemented here from their algorithm descriptions
(no code is copied) and take the same inputs as the benchmark's other
implementations (:func:`benchmark.make_reid_data` plus ``scores``):

* :func:`run_reid_clipreid`: CLIP-ReID's / TransReID's ``eval_func``
  (general protocol: same pid and same camera is junk), one argsort of the
  whole ``Q x G`` distance matrix and a whole-matrix match table, then a
  short NumPy loop over the queries;
* :func:`run_reid_ccreid`: Simple-CCReID's ``evaluate`` (general) and
  ``evaluate_with_clothes`` (``CC`` / ``SC``), one argsort of the whole
  matrix, then per query the good and junk index sets and
  ``compute_ap_cmc``.

Both sort with :func:`stable_argsort`, which returns NumPy's stable
ascending order at the cost of its default (unstable) argsort: the peers'
own ``np.argsort(distmat, axis=1)`` leaves tied distances in an
unspecified order, so their metrics would differ from ours (and from run
to run) on the benchmark's exact ties; a ``kind='stable'`` argsort would
fix that but costs about twice the default one (0.20 s against 0.11 s at
493 x 7,050 on one core), which would inflate the speed-up.
"""
from typing import Any, Dict

import numpy as np

__all__ = [
    'stable_argsort', 'peer_metrics', 'run_reid_clipreid', 'run_reid_ccreid'
]

#: CLIP-ReID's ``max_rank``: the CMC curve it keeps per query.
MAX_RANK = 50


def stable_argsort(distmat: np.ndarray) -> np.ndarray:
    """Per row, the stable ascending order of a float32 matrix.

    Each distance's bits are made monotone as a signed integer (negative
    floats have their 31 low bits flipped; ``-0.0`` is first turned into
    ``+0.0``, which compares equal) and packed above its column index into
    one int64 key; sorting the keys (unstable, NumPy's fast integer sort)
    orders by distance, then by column, exactly as
    ``np.argsort(distmat, axis=1, kind='stable')``. Needs no NaN and fewer
    than 2**32 columns.

    Args:
        distmat (np.ndarray): ``Q x G`` float32 distances.

    Returns:
        np.ndarray: int64 ``Q x G`` column indices, row by row ascending.
    """
    bits = (distmat.astype(np.float32) + np.float32(0.0)).view(np.int32)
    keys = bits.astype(np.int64)
    keys ^= (keys >> 31) & 0x7FFFFFFF
    keys <<= 32
    keys |= np.arange(distmat.shape[1], dtype=np.int64)
    keys.sort(axis=1)
    keys &= 0xFFFFFFFF
    return keys


def peer_metrics(curve: np.ndarray, mean_ap: float, mean_inp: float,
                 num_valid: int) -> Dict[str, float]:
    """The benchmark's result dict from a peer's mean CMC curve (fractions,
    at least 10 long), mAP and mINP (fractions) and valid-query count.

    Returns:
        dict: ``R@1``, ``R@5``, ``R@10``, ``mAP``, ``mINP`` in percent and
        ``num_valid``.
    """
    out = {f'R@{k}': 100.0 * float(curve[k - 1]) for k in (1, 5, 10)}
    out.update(
        mAP=100.0 * float(mean_ap),
        mINP=100.0 * float(mean_inp),
        num_valid=int(num_valid))
    return out


def _distmat(data: Dict[str, Any]) -> np.ndarray:
    """The distances both peers rank: the negated score matrix (the
    ``*_scores`` harness, datasets.md §6.3), or of the features."""
    if 'scores' in data:
        return -data['scores'].numpy()
    return -(data['qf'].numpy() @ data['gf'].numpy().T)


def run_reid_clipreid(data: Dict[str, Any], mode: str) -> Dict[str, float]:
    """CLIP-ReID's / TransReID's vectorised ``eval_func``.

    Steps as the peer takes them: one ascending argsort of the whole
    distance matrix (``indices``); the whole ``Q x G`` int32 match table
    ``g_pids[indices] == q_pids[:, None]``; then per query its sorted row
    ``order``, ``remove = (g_pids[order] == q_pid) & (g_camids[order] ==
    q_camid)``, ``orig_cmc = matches[q][~remove]``; a query without a
    match is skipped; ``cmc = orig_cmc.cumsum()`` clipped to 1 and cut to
    the first ``max_rank`` (50) entries; AP = ``sum(cumsum / (1..n) *
    orig_cmc) / orig_cmc.sum()``; INP = ``cumsum[last] / (last + 1)``
    with ``last`` the position of the last match (the variant that
    reports mINP, read before the clipping). CMC = mean of the kept rows,
    mAP and mINP the means over the valid queries.

    Deliberate deviations: :func:`stable_argsort` instead of the default
    argsort (same cost, ties in gallery order as ours; module doc); the
    CMC rows are summed in float32 as the peer does (exact: integer
    counts) but divided in float64, which removes a float32 rounding of
    up to 3e-6 percentage points from R@K and nothing else.

    Args:
        data (dict): From ``benchmark.make_reid_data`` (``scores`` or
            features).
        mode (str): Only ``'general'`` (the peer has no clothes rules).

    Returns:
        dict: Metrics in percent and ``num_valid``.
    """
    if mode != 'general':
        raise ValueError(f'eval_func only has the general protocol, got '
                         f'mode {mode!r}')
    q_pids, g_pids = data['qp'].numpy(), data['gp'].numpy()
    q_camids, g_camids = data['qc'].numpy(), data['gc'].numpy()
    distmat = _distmat(data)
    num_q, num_g = distmat.shape
    max_rank = min(MAX_RANK, num_g)
    indices = stable_argsort(distmat)
    del distmat
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        q_pid, q_camid = q_pids[q_idx], q_camids[q_idx]
        order = indices[q_idx]
        remove = (g_pids[order] == q_pid) & (g_camids[order] == q_camid)
        keep = np.invert(remove)
        orig_cmc = matches[q_idx][keep]
        if not np.any(orig_cmc):
            continue
        cmc = orig_cmc.cumsum()
        max_pos_idx = np.max(np.where(orig_cmc == 1))
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        num_rel = orig_cmc.sum()
        tmp_cmc = orig_cmc.cumsum() / np.arange(1, orig_cmc.shape[0] + 1.0)
        all_ap.append((tmp_cmc * orig_cmc).sum() / num_rel)
    num_valid = len(all_ap)
    curve = np.asarray(all_cmc).astype(np.float32).sum(0).astype(
        np.float64) / num_valid
    return peer_metrics(curve, np.mean(all_ap), np.mean(all_inp), num_valid)


def _compute_ap_cmc(index: np.ndarray, good_index: np.ndarray,
                    junk_index: np.ndarray) -> tuple:
    """Simple-CCReID's ``compute_ap_cmc`` for one query's sorted row.

    Junk dropped from the row with a membership mask, the good items'
    junk-free positions ``rows_good`` from another, ``cmc`` a G-long row
    of 1 from the first good position on, AP = ``sum_i (1/n_good) *
    (i+1)/(rows_good[i]+1)``. Deviations: ``np.isin`` for the peer's
    ``np.in1d`` (the same membership test, ``in1d`` is deprecated in
    NumPy 2), the AP sum one vectorised expression instead of a Python
    loop over the good items (in the peer's favour), and the INP
    ``n_good / (rows_good[-1] + 1)``, which the peer does not compute.

    Returns:
        tuple: ``ap``, ``inp`` (floats) and ``cmc`` (float64 ``(len,)``).
    """
    cmc = np.zeros(len(index))
    index = index[np.isin(index, junk_index, invert=True)]
    ngood = len(good_index)
    rows_good = np.argwhere(np.isin(index, good_index)).flatten()
    cmc[rows_good[0]:] = 1.0
    ap = float(np.sum((np.arange(ngood) + 1.0) / (rows_good + 1.0)) / ngood)
    return ap, ngood / (rows_good[-1] + 1.0), cmc


def run_reid_ccreid(data: Dict[str, Any], mode: str) -> Dict[str, float]:
    """Simple-CCReID's ``evaluate`` / ``evaluate_with_clothes``.

    Steps as the peer takes them: one ascending argsort of the whole
    distance matrix; then per query ``query_index = argwhere(g_pids ==
    q_pid)``, ``camera_index = argwhere(g_camids == q_camid)``, ``good =
    setdiff1d(query_index, camera_index)``, ``junk = intersect1d(
    query_index, camera_index)``; with clothes (``cloth_index =
    argwhere(g_clothids == q_clothid)``) the ``CC`` mode takes
    ``setdiff1d(good, cloth_index)`` and adds ``intersect1d(query_index,
    cloth_index)`` to the junk, the ``SC`` mode takes ``intersect1d(good,
    cloth_index)`` and adds ``setdiff1d(query_index, cloth_index)``
    (``union1d``); a query without a good item is skipped; then
    :func:`_compute_ap_cmc` and the G-long CMC rows summed. CMC, mAP (and
    mINP) are the means over the valid queries.

    Deviations: :func:`stable_argsort` instead of the default argsort
    (module doc) and those of :func:`_compute_ap_cmc`.

    Args:
        data (dict): From ``benchmark.make_reid_data`` (``scores`` or
            features).
        mode (str): ``'general'`` (``evaluate``), ``'cloth-changing'``
            (``CC``) or ``'same-clothes'`` (``SC``).

    Returns:
        dict: Metrics in percent and ``num_valid``.
    """
    if mode not in ('general', 'cloth-changing', 'same-clothes'):
        raise ValueError(f'unknown mode {mode!r}')
    q_pids, g_pids = data['qp'].numpy(), data['gp'].numpy()
    q_camids, g_camids = data['qc'].numpy(), data['gc'].numpy()
    q_clothids, g_clothids = data['qo'].numpy(), data['go'].numpy()
    distmat = _distmat(data)
    num_q, num_g = distmat.shape
    index = stable_argsort(distmat)
    del distmat
    cmc_sum = np.zeros(num_g)
    ap_sum = inp_sum = 0.0
    num_no_gt = 0
    for i in range(num_q):
        query_index = np.argwhere(g_pids == q_pids[i])
        camera_index = np.argwhere(g_camids == q_camids[i])
        good_index = np.setdiff1d(
            query_index, camera_index, assume_unique=True)
        junk_index = np.intersect1d(query_index, camera_index)
        if mode != 'general':
            cloth_index = np.argwhere(g_clothids == q_clothids[i])
            if mode == 'cloth-changing':
                good_index = np.setdiff1d(
                    good_index, cloth_index, assume_unique=True)
                junk_clothes = np.intersect1d(query_index, cloth_index)
            else:
                good_index = np.intersect1d(good_index, cloth_index)
                junk_clothes = np.setdiff1d(query_index, cloth_index)
            junk_index = np.union1d(junk_index, junk_clothes)
        if good_index.size == 0:
            num_no_gt += 1
            continue
        ap, inp, cmc = _compute_ap_cmc(index[i], good_index, junk_index)
        cmc_sum += cmc
        ap_sum += ap
        inp_sum += inp
    num_valid = num_q - num_no_gt
    return peer_metrics(cmc_sum / num_valid, ap_sum / num_valid,
                        inp_sum / num_valid, num_valid)


def run_rerank_released(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int,
                        lambda_value: float) -> np.ndarray:
    """Zhong et al.'s released k-reciprocal re-ranking, dense, as CLIP-ReID
    (and TransReID) run it: the peer of ``k_reciprocal_rerank(...,
    convention='released')``.

    Written from the description of the released code in
    ``mmreid_clip/evaluation/functional/reranking.py`` (module doc,
    "Conventions", points 1-8) with the released code's structure, which
    sets its cost: the whole ``N x N`` pool (``N = Q + G``) at every step.

    1. Distances ``|a|^2 + |b|^2 - 2 a.b`` of the pool in float32 (one
       matrix product), every column divided by its maximum, then
       transposed (so each row is scaled by its own maximum).
    2. ``initial_rank``: NumPy's default argsort of every row of the whole
       matrix.
    3. A Python loop over the ``N`` items: forward neighbours (first
       ``k1 + 1`` of the row), the k-reciprocal ones (those that have the
       item in their own first ``k1 + 1``), then a loop over these with
       the half-size sets (``round(k1 / 2)`` half to even), added when
       their overlap is strictly above 2/3 of their size; the union's
       weights ``exp(-d)`` normalised to sum 1, stored in a dense float16
       ``N x N`` matrix ``V``.
    4. Query expansion: every row of ``V`` replaced by the mean (float32
       accumulation, then float16) of the rows of its first ``k2``
       neighbours, in a loop over the items.
    5. An inverted index (per gallery column, the rows with a non-zero),
       then per query the float16 sums of ``min(V[q, j], V[i, j])`` over
       its non-zero columns ``j`` in ascending order, ``d_J = 1 - s / (2 -
       s)`` in float16.
    6. ``d* = (1 - lambda) d_J + lambda d`` for the query rows, cut to the
       gallery columns.

    Args:
        qf (np.ndarray): ``Q x D`` float32 query features.
        gf (np.ndarray): ``G x D`` float32 gallery features.
        k1, k2 (int): Neighbourhood and query-expansion sizes.
        lambda_value (float): Weight of the original distance.

    Returns:
        np.ndarray: float32 ``Q x G`` distances (smaller = more similar).
    """
    import torch
    num_q = qf.shape[0]
    feat = torch.cat([torch.from_numpy(qf), torch.from_numpy(gf)])
    num_all = feat.size(0)
    sq = feat.pow(2).sum(dim=1, keepdim=True)
    dist = (sq.expand(num_all, num_all) + sq.t().expand(num_all, num_all))
    dist = dist.addmm(feat, feat.t(), beta=1, alpha=-2).numpy()
    del feat, sq
    original_dist = np.transpose(dist / np.max(dist, axis=0))
    del dist
    V = np.zeros_like(original_dist).astype(np.float16)
    initial_rank = np.argsort(original_dist).astype(np.int32)
    half = int(np.around(k1 / 2))

    def reciprocal(rank: np.ndarray, item: int, k: int) -> np.ndarray:
        """The items of ``item``'s first k + 1 that have it in theirs."""
        forward = rank[item, :k + 1]
        backward = rank[forward, :k + 1]
        return forward[np.where(backward == item)[0]]

    for i in range(num_all):
        recip = reciprocal(initial_rank, i, k1)
        expansion = recip
        for candidate in recip:
            cand_recip = reciprocal(initial_rank, candidate, half)
            if (len(np.intersect1d(cand_recip, recip)) >
                    2 / 3 * len(cand_recip)):
                expansion = np.append(expansion, cand_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    original_dist = original_dist[:num_q]
    if k2 != 1:
        v_qe = np.zeros_like(V, dtype=np.float16)
        for i in range(num_all):
            v_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = v_qe
        del v_qe
    del initial_rank
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(num_all)]
    jaccard = np.zeros_like(original_dist, dtype=np.float16)
    for i in range(num_q):
        temp_min = np.zeros((1, num_all), dtype=np.float16)
        nonzero = np.where(V[i, :] != 0)[0]
        for j in nonzero:
            rows = inv_index[j]
            temp_min[0, rows] = temp_min[0, rows] + np.minimum(
                V[i, j], V[rows, j])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    final = jaccard * (1 - lambda_value) + original_dist * lambda_value
    return final[:num_q, num_q:]
