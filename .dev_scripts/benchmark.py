"""Side-by-side benchmark of the project's evaluation against peer algorithms.

Usage::

    python .dev_scripts/benchmark.py [--quick] [--json out.json]
                                       [--sections metric reid rerank]
                                       [--repeats N] [--threads N]

Section ``metric`` times text-to-image retrieval (R@1/5/10, mAP, mINP) at
the real test-set shapes (``docs/methods/datasets.md`` §4) with three
implementations fed the same synthetic features:

* ``ours``: :func:`~mmreid_clip.evaluation.functional.rank_queries` +
  :func:`~mmreid_clip.evaluation.functional.summarize` (chunked, sort-free);
* ``peer``: an IRRA-class evaluator written here from the algorithm
  description (datasets.md §6.1): full similarity matrix, full descending
  argsort,
  gathered ``Q x G`` gallery pids, ``Q x G`` match matrix, CMC from a cumsum
  over the first 10 columns, AP from the ``Q x G`` cumsum divided by the
  positions, mINP from a Python loop over the queries;
* ``sort_bound``: the similarity matmul plus one full argsort and nothing
  else, the floor of every full-sort evaluator;
* ``matmul``: the similarity matmul alone, the floor of every evaluator
  (``peer / matmul`` caps the speed-up over the peer any evaluator can
  have on the machine).

Section ``reid`` times image ReID evaluation (R@1/5/10, mAP, mINP with
junk removal) at the PRCC and LTCC test shapes, in the modes each set is
evaluated with, on synthetic features with the sets' camera and clothes
structure (:func:`make_reid_data`):

* ``ours``: :class:`~mmreid_clip.evaluation.ReIDMetric` (its
  ``compute_metrics`` on per-sample records: ``rank_queries`` with a junk
  callback, chunked and sort-free);
* ``peer`` (the *loop peer*): a Simple-CCReID / torchreid-class evaluator
  written here from the description (datasets.md §6.2): full distance
  matrix, full NumPy argsort of every row, a Python loop over the queries
  with NumPy set operations for the good and junk items;
* ``clipreid_scores`` / ``ccreid_scores``: the vectorised peers of
  ``bench_reid_peers.py``, CLIP-ReID's ``eval_func`` (general rule only)
  and Simple-CCReID's ``evaluate`` / ``evaluate_with_clothes``, fed the
  score matrix;
* ``sort_bound``: as in ``metric``, once per shape.

Section ``rerank`` times k-reciprocal re-ranking at the LTCC pool (7,543
items), k1/k2/lambda 20/6/0.3 and 50/15/0.3: ours
(``convention='released'``) against the released code's dense algorithm
(``bench_reid_peers.run_rerank_released``); the distances must be equal.

``--threads N`` sets torch's and the BLAS pools' threads in every worker
(default: torch's default, the number of cores).

Every measurement runs in a fresh subprocess, so the peak memory (the
growth of ``ru_maxrss`` over the process's own baseline, taken after the
imports and the feature creation) is not polluted by earlier runs. Wall time
is the best of ``N`` such runs. The metrics of ours and every peer must
agree to 1e-4 percentage points in ``metric`` and 2e-6 in ``reid`` (and the
numbers of valid queries exactly), the re-ranked distances exactly; the
script exits with status 1 if not.
"""
import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

# the sibling modules (bench_common, bench_cuda) import as top-level ones,
# also when a test loads this file by path
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
# ... and mmreid_clip from the checkout this script is in (its workers too),
# not from wherever the environment installed it (an editable install of
# another worktree would otherwise be measured instead)
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)

from bench_common import (FEAT_DIM, available_ram_gb,  # noqa: E402
                          machine_info, make_features)
from bench_reid_peers import (peer_metrics, run_reid_ccreid,  # noqa: E402
                              run_reid_clipreid, run_rerank_released)

if TYPE_CHECKING:  # torch is imported in the workers, after the start-up
    import torch

#: (name, queries, gallery images, identities) of the real test sets
#: (docs/methods/datasets.md §4).
FULL_SHAPES = [
    ('RSTPReid', 2000, 1000, 200),
    ('CUHK-PEDES', 6156, 3074, 1000),
    ('ICFG-PEDES', 19848, 19848, 1000),
]
#: The small shape of ``--quick`` (well under a minute: most of a run is
#: the interpreter and import start-up of its 7 worker processes).
QUICK_SHAPES = [
    ('RSTPReid', 2000, 1000, 200),
]
IMPLS = ('ours', 'peer', 'sort_bound', 'matmul', 'ours_scores',
         'peer_scores', 'sort_scores')
#: Suffix of the implementations fed a precomputed score matrix (the
#: harness of docs/methods/datasets.md §6.3: one saved matrix for every
#: evaluator) instead of the features.
SCORES = '_scores'
METRIC_KEYS = ('R@1', 'R@5', 'R@10', 'mAP', 'mINP')
TOLERANCE = 1e-4
#: The peer builds several Q x G arrays (6.3 GB measured at ICFG size with
#: early frees, 13-16 GB for IRRA as written); with less available RAM than
#: this it is skipped at shapes over ``PEER_BIG_CELLS`` rather than risk the
#: OOM killer taking the whole benchmark down.
PEER_MIN_AVAILABLE_GB = 20.0
PEER_BIG_CELLS = 100_000_000
SEED = 0

#: Section ``reid``: (name, queries, gallery, data kind, modes). PRCC is
#: evaluated with the general rule on two query sets (same-clothes cam B,
#: cloth-changing cam C, vs cam A); every PRCC cam-B query wears its
#: gallery outfit and every cam-C query another one, so the SC (resp. CC)
#: mode ranks the same positives as the general rule there. LTCC has
#: general, cloth-changing and (rarely reported) same-clothes. Per-camera
#: PRCC counts are the estimates of docs/methods/datasets.md §4.
REID_FULL_SHAPES = [
    ('PRCC-SC', 3543, 3384, 'prcc_sc', ('general', 'same-clothes')),
    ('PRCC-CC', 3873, 3384, 'prcc_cc', ('general', 'cloth-changing')),
    ('LTCC', 493, 7050, 'ltcc', ('general', 'cloth-changing',
                                 'same-clothes')),
]
#: ``--quick``: one small LTCC-like shape (the section stays under ~20 s:
#: most of a run is the interpreter and import start-up).
REID_QUICK_SHAPES = [
    ('LTCC-toy', 150, 1500, 'ltcc', ('general', 'cloth-changing')),
]
REID_IMPLS = ('ours', 'peer', 'ours_scores', 'peer_scores',
              'clipreid_scores', 'ccreid_scores')
#: The vectorised peers of ``bench_reid_peers`` (fed the score matrix only:
#: from features they would add the same matmul as the others) and the
#: modes each has; CLIP-ReID's ``eval_func`` only knows the general rule.
VECTORISED_PEERS = {
    'clipreid': ('general', ),
    'ccreid': ('general', 'cloth-changing', 'same-clothes'),
}
#: Section ``reid``: every peer must agree with ours to this (percentage
#: points) on R@1/5/10, mAP and mINP, and exactly on the valid queries.
REID_TOLERANCE = 2e-6
#: Section ``rerank``: the released convention reproduces the released
#: code's float32 distances bit for bit, so any difference is reported.
RERANK_TOLERANCE = 0.0
#: Section ``rerank``: (name, queries, gallery, data kind) and the
#: (k1, k2, lambda) settings: the paper's and ReIDMetric's defaults, and
#: CLIP-ReID's (docs/methods/datasets.md; reranking.py module doc).
RERANK_FULL_SHAPES = [('LTCC', 493, 7050, 'ltcc')]
RERANK_QUICK_SHAPES = [('LTCC-toy', 150, 1500, 'ltcc')]
RERANK_SETTINGS = [(20, 6, 0.3), (50, 15, 0.3)]
RERANK_QUICK_SETTINGS = [(20, 6, 0.3)]
#: Identities of the test sets (datasets.md §2.1, §2.2) and LTCC's 12 cameras.
REID_IDS = {'prcc_sc': 71, 'prcc_cc': 71, 'ltcc': 75}
LTCC_CAMERAS = 12


# ---------------------------------------------------------------- data ----
def _quantised(x: 'torch.Tensor', gen: 'torch.Generator',
               labels: List['torch.Tensor']) -> 'torch.Tensor':
    """Copy ~2% of the (normalised) rows over others, round to 2**-7.

    The copies carry their labels along (so exact score ties exist between
    items of one identity, camera and outfit), and the rounding makes every
    512-term dot product exact in float32 (see :func:`make_features`).
    Works in place.
    """
    import torch
    n_dup = max(1, x.size(0) // 50)
    src = torch.randint(x.size(0), (n_dup, ), generator=gen)
    # distinct targets: with a repeated target, which source wins an
    # index_put is unspecified, and the workers must build identical data
    dst = torch.randperm(x.size(0), generator=gen)[:n_dup]
    x[dst] = x[src]
    for lab in labels:
        lab[dst] = lab[src]
    return x.mul_(128).round_().div_(128)


def make_reid_data(kind: str,
                   num_query: int,
                   num_gallery: int,
                   seed: int = SEED) -> Dict[str, Any]:
    """Deterministic synthetic ReID features with cameras and clothes.

    A feature is its identity's random centre plus an outfit offset (both
    standard normal) plus 4x standard normal noise (normalised, ~2%
    duplicated rows, quantised as in
    :func:`make_features`), so a change of clothes moves the features and
    the cloth-changing metrics come out lower than the general ones.

    * ``prcc_sc`` / ``prcc_cc`` (PRCC, datasets.md §2.1; 71 ids): the gallery
      is camera
      A (0) in outfit 0; queries are camera B (1) in the same outfit
      (``_sc``) or camera C (2) in another outfit (``_cc``). Clothes ids are
      ``2 * pid + outfit``.
    * ``ltcc`` (LTCC, datasets.md §2.2; 75 ids, 12 cameras): every identity has
      2 to 5
      outfits; every image picks one of its identity's outfits and a random
      camera. Clothes ids are ``8 * pid + outfit``.

    Gallery pids cycle over the identities and are shuffled; every query
    takes the pid of a random gallery image.

    Args:
        kind (str): ``'prcc_sc'``, ``'prcc_cc'`` or ``'ltcc'``.
        num_query (int): Q.
        num_gallery (int): G.
        seed (int): Seed of the generator.

    Returns:
        dict: ``qf`` (Q x 512), ``gf`` (G x 512) float32 features and int64
        ``qp``/``gp`` (pids), ``qc``/``gc`` (cameras), ``qo``/``go``
        (clothes ids).
    """
    import torch
    gen = torch.Generator().manual_seed(seed)
    num_ids = REID_IDS[kind]
    centres = torch.randn(num_ids, FEAT_DIM, generator=gen)
    outfits = torch.randn(num_ids, 5, FEAT_DIM, generator=gen)
    gp = torch.arange(num_gallery) % num_ids
    gp = gp[torch.randperm(num_gallery, generator=gen)]
    qp = gp[torch.randint(num_gallery, (num_query, ), generator=gen)]
    if kind == 'ltcc':
        n_outfits = torch.randint(2, 6, (num_ids, ), generator=gen)

        def draw(pids: 'torch.Tensor') -> Tuple['torch.Tensor', ...]:
            outfit = (torch.rand(pids.numel(), generator=gen) *
                      n_outfits[pids]).long()
            cam = torch.randint(
                LTCC_CAMERAS, (pids.numel(), ), generator=gen)
            return outfit, cam, 8 * pids + outfit

        g_outfit, gc, go = draw(gp)
        q_outfit, qc, qo = draw(qp)
    else:
        g_outfit = torch.zeros_like(gp)
        gc = torch.zeros_like(gp)
        q_outfit = torch.full_like(qp, 0 if kind == 'prcc_sc' else 1)
        qc = torch.full_like(qp, 1 if kind == 'prcc_sc' else 2)
        go, qo = 2 * gp + g_outfit, 2 * qp + q_outfit

    def feats(pids: 'torch.Tensor', outfit: 'torch.Tensor',
              labels: List['torch.Tensor']) -> 'torch.Tensor':
        # built in row blocks: the transient buffers stay small, so that a
        # worker's memory baseline is the data itself and a peer's Q x G
        # arrays cannot hide in memory freed after the data creation
        x = torch.empty(pids.numel(), FEAT_DIM)
        for s in range(0, pids.numel(), 1024):
            p, o = pids[s:s + 1024], outfit[s:s + 1024]
            block = centres[p] + outfits[p, o]
            block.add_(torch.randn(block.shape, generator=gen), alpha=4.0)
            x[s:s + 1024] = torch.nn.functional.normalize(block, dim=1)
        return _quantised(x, gen, labels)

    gf = feats(gp, g_outfit, [gp, gc, go])
    qf = feats(qp, q_outfit, [qp, qc, qo])
    return {
        'qf': qf.contiguous(),
        'gf': gf.contiguous(),
        'qp': qp,
        'gp': gp,
        'qc': qc,
        'gc': gc,
        'qo': qo,
        'go': go,
    }


# ------------------------------------------------------ implementations ----
def _similarity(data: Dict[str, Any]) -> 'torch.Tensor':
    """The given score matrix (``*_scores`` runs), else the matmul."""
    if 'scores' in data:
        return data['scores']
    return data['qf'] @ data['gf'].t()


def run_ours(data: Dict[str, Any]) -> Dict[str, float]:
    """The project's chunked, sort-free ranking core.

    Args:
        data (dict): From :func:`make_features`.

    Returns:
        dict: Metrics in percent.
    """
    from mmreid_clip.evaluation.functional import rank_queries, summarize
    if 'scores' in data:
        ranks = rank_queries(
            scores=data['scores'],
            query_labels=data['qp'],
            gallery_labels=data['gp'])
    else:
        ranks = rank_queries(
            query_feats=data['qf'],
            gallery_feats=data['gf'],
            query_labels=data['qp'],
            gallery_labels=data['gp'])
    out = summarize(ranks, topk=(1, 5, 10))
    return {k: out[k] for k in METRIC_KEYS}


def run_peer(data: Dict[str, Any]) -> Dict[str, float]:
    """An IRRA-class evaluator, written from the algorithm description.

    Follows ``docs/methods/datasets.md`` §6.1: full argsort of the
    similarity rows, gallery pids gathered into a ``Q x G`` int64 array, a
    ``Q x G`` match matrix, CMC from a cumsum over the first 10 columns, AP
    from the full ``Q x G`` cumsum over the positions, mINP from a Python
    loop over the rows. Two deliberate differences, both in the peer's
    favour (so the measured speed-up and memory ratio are lower bounds):
    the argsort is stable (for comparable values under ties) and the AP
    division is one vectorised op instead of a per-column Python list;
    intermediates are freed as soon as they are dead.

    Args:
        data (dict): From :func:`make_features`.

    Returns:
        dict: Metrics in percent.
    """
    import torch
    q_pids, g_pids = data['qp'], data['gp']
    similarity = _similarity(data)
    indices = torch.argsort(similarity, dim=1, descending=True, stable=True)
    del similarity
    pred_labels = g_pids[indices]  # Q x G int64
    del indices
    matches = pred_labels.eq(q_pids.view(-1, 1))  # Q x G bool
    del pred_labels

    all_cmc = matches[:, :10].cumsum(1).clamp_(max=1)
    num_rel = matches.sum(1)
    tmp_cmc = matches.cumsum(1)  # Q x G int64

    # mINP: rank of the hardest positive, one query at a time (as IRRA)
    inp = []
    for i in range(matches.size(0)):
        pos_idx = torch.where(matches[i])[0]
        pos_max = int(pos_idx.max())
        inp.append(float(tmp_cmc[i, pos_max]) / (pos_max + 1.0))
    mINP = float(torch.tensor(inp, dtype=torch.float64).mean())

    positions = torch.arange(
        1, tmp_cmc.size(1) + 1, dtype=torch.float32)[None, :]
    precision = tmp_cmc.float().div_(positions)  # Q x G float32
    del tmp_cmc
    # float64 accumulation keeps the float32 rounding far below 1e-4
    ap = (precision.mul_(matches)).sum(1, dtype=torch.float64) / num_rel
    del precision
    cmc = all_cmc.double().mean(0)
    return {
        'R@1': 100.0 * float(cmc[0]),
        'R@5': 100.0 * float(cmc[4]),
        'R@10': 100.0 * float(cmc[9]),
        'mAP': 100.0 * float(ap.mean()),
        'mINP': 100.0 * mINP,
    }


def run_sort_bound(data: Dict[str, Any]) -> Dict[str, float]:
    """The similarity matmul and one full (stable) argsort, nothing else.

    Args:
        data (dict): From :func:`make_features`.

    Returns:
        dict: Empty (no metrics are computed).
    """
    import torch
    similarity = _similarity(data)
    indices = torch.argsort(similarity, dim=1, descending=True, stable=True)
    del similarity, indices
    return {}


def run_matmul(data: Dict[str, Any]) -> Dict[str, float]:
    """The similarity matmul alone: the floor of every evaluator that
    computes the scores, so ``peer / matmul`` is the largest speed-up over
    the peer that any evaluator can reach on the machine.

    Args:
        data (dict): From :func:`make_features`.

    Returns:
        dict: Empty (no metrics are computed).
    """
    similarity = data['qf'] @ data['gf'].t()
    del similarity
    return {}


RUNNERS = {
    'ours': run_ours,
    'peer': run_peer,
    'sort_bound': run_sort_bound,
    'matmul': run_matmul,
    'ours_scores': run_ours,
    'peer_scores': run_peer,
    'sort_scores': run_sort_bound,
}


def reid_records(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Per-sample records as :meth:`ReIDMetric.process` keeps them.

    Args:
        data (dict): From :func:`make_reid_data`.

    Returns:
        list[dict]: the queries then the gallery, each with its own feature
        copy, ``pid``, ``camid``, ``clothes_id`` and ``subset``.
    """
    records = []
    for side, subset in (('q', 'query'), ('g', 'gallery')):
        feats = data[f'{side}f']
        pids, cams, clothes = (data[f'{side}{k}'].tolist()
                               for k in ('p', 'c', 'o'))
        for i in range(feats.size(0)):
            records.append(
                dict(
                    img_feat=feats[i].clone(),
                    pid=pids[i],
                    camid=cams[i],
                    clothes_id=clothes[i],
                    subset=subset))
    return records


def run_reid_ours(data: Dict[str, Any], mode: str) -> Dict[str, float]:
    """:class:`ReIDMetric` on the records (``data['records']``).

    ``normalize=False``: the synthetic features are already (quantised)
    unit vectors, as the models return them, and re-normalising would
    break the exactness of their dot products.

    Args:
        data (dict): From :func:`make_reid_data` plus ``records``.
        mode (str): The setting's mode.

    Returns:
        dict: Metrics in percent and ``num_valid``.
    """
    if 'scores' in data:
        return _reid_ours_from_scores(data, mode)
    from mmreid_clip.evaluation import ReIDMetric
    metric = ReIDMetric(
        settings=[dict(name='x', mode=mode)], normalize=False)
    out = metric.compute_metrics(data['records'])
    metrics = {k: out[f'x/{k}'] for k in METRIC_KEYS}
    metrics['num_valid'] = out['x/num_valid_queries']
    return metrics


def _reid_ours_from_scores(data: Dict[str, Any],
                           mode: str) -> Dict[str, float]:
    """``rank_queries`` on the score matrix with the metric's junk rule."""
    from mmreid_clip.evaluation import reid_label_junk_fn
    from mmreid_clip.evaluation.functional import rank_queries, summarize
    clothes = (data['qo'], data['go']) if mode != 'general' else ()
    ranks = rank_queries(
        scores=data['scores'],
        query_labels=data['qp'],
        gallery_labels=data['gp'],
        label_junk_fn=reid_label_junk_fn(mode, data['qc'], data['gc'],
                                         *clothes))
    out = summarize(ranks, topk=(1, 5, 10))
    metrics = {k: out[k] for k in METRIC_KEYS}
    metrics['num_valid'] = out['num_valid']
    return metrics


def run_reid_peer(data: Dict[str, Any], mode: str) -> Dict[str, float]:
    """A Simple-CCReID / torchreid-class evaluator, from the description.

    Follows ``docs/methods/datasets.md`` §6.2: a full ``Q x G``
    distance matrix (negative cosine), a full NumPy argsort of every row,
    then a Python loop over the queries: good and junk gallery items from
    NumPy set operations on the pid / camera / clothes index lists
    (``argwhere``, ``setdiff1d``, ``intersect1d``, ``union1d``), junk
    dropped from the sorted row with ``isin``, a ``G``-long CMC row per
    query, AP = ``sum_i (1/n_good) (i+1)/(r_i+1)``. Deviations, all in the
    peer's favour or needed for the comparison: the distance matrix is one
    matrix product (CAL builds it one query row at a time on the device);
    the argsort is stable (equal ties as ours); the AP sum over a query's
    good items is one vectorised expression; mINP (``n_good / (r_last +
    1)``, which CAL does not compute) is added to compare all five metrics.

    Args:
        data (dict): From :func:`make_reid_data`.
        mode (str): ``'general'``, ``'cloth-changing'`` or
            ``'same-clothes'`` (datasets.md §5.2, §5.3).

    Returns:
        dict: Metrics in percent and ``num_valid``.
    """
    import numpy as np
    q_pids, g_pids = data['qp'].numpy(), data['gp'].numpy()
    q_cams, g_cams = data['qc'].numpy(), data['gc'].numpy()
    q_clo, g_clo = data['qo'].numpy(), data['go'].numpy()
    if 'scores' in data:
        distmat = -data['scores'].numpy()
    else:
        distmat = -(data['qf'].numpy() @ data['gf'].numpy().T)
    index = np.argsort(distmat, axis=1, kind='stable')
    del distmat
    num_q, num_g = index.shape
    cmc_sum = np.zeros(num_g)
    ap_sum = inp_sum = 0.0
    num_valid = 0
    for i in range(num_q):
        query_index = np.argwhere(g_pids == q_pids[i]).flatten()
        camera_index = np.argwhere(g_cams == q_cams[i]).flatten()
        good = np.setdiff1d(query_index, camera_index, assume_unique=True)
        junk = np.intersect1d(query_index, camera_index)
        if mode != 'general':
            cloth_index = np.argwhere(g_clo == q_clo[i]).flatten()
            if mode == 'cloth-changing':
                good = np.setdiff1d(good, cloth_index, assume_unique=True)
                junk_clothes = np.intersect1d(query_index, cloth_index)
            else:
                good = np.intersect1d(good, cloth_index)
                junk_clothes = np.setdiff1d(
                    query_index, cloth_index, assume_unique=True)
            junk = np.union1d(junk, junk_clothes)
        if good.size == 0:
            continue  # no valid positive: skipped, as in the peers
        order = index[i]
        order = order[np.isin(order, junk, invert=True)]
        rows_good = np.flatnonzero(np.isin(order, good))
        cmc = np.zeros(num_g)
        cmc[rows_good[0]:] = 1
        cmc_sum += cmc
        n_good = rows_good.size
        ap_sum += float(
            np.sum(np.arange(1, n_good + 1) / (rows_good + 1.0)) / n_good)
        inp_sum += n_good / (rows_good[-1] + 1.0)
        num_valid += 1
    return peer_metrics(cmc_sum / num_valid, ap_sum / num_valid,
                        inp_sum / num_valid, num_valid)


REID_RUNNERS = {
    'ours': run_reid_ours,
    'peer': run_reid_peer,
    'clipreid_scores': run_reid_clipreid,
    'ccreid_scores': run_reid_ccreid,
    'sort_bound': lambda data, mode: run_sort_bound(data),
    'matmul': lambda data, mode: run_matmul(data),
    'ours_scores': run_reid_ours,
    'peer_scores': run_reid_peer,
    'sort_scores': lambda data, mode: run_sort_bound(data),
}


def run_rerank_ours(data: Dict[str, Any], spec: Dict[str, Any]) -> Any:
    """``k_reciprocal_rerank(convention='released')``: the project's
    re-ranking with the released code's values (features as they are:
    already unit vectors)."""
    from mmreid_clip.evaluation.functional import k_reciprocal_rerank
    return k_reciprocal_rerank(
        data['qf'],
        data['gf'],
        spec['k1'],
        spec['k2'],
        spec['lambda'],
        normalize=False,
        convention='released').numpy()


def run_rerank_peer(data: Dict[str, Any], spec: Dict[str, Any]) -> Any:
    """The released re-ranking code's algorithm, dense
    (:func:`bench_reid_peers.run_rerank_released`)."""
    return run_rerank_released(data['qf'].numpy(), data['gf'].numpy(),
                               spec['k1'], spec['k2'], spec['lambda'])


RERANK_RUNNERS = {'ours': run_rerank_ours, 'peer': run_rerank_peer}


def _rerank_metrics(dist: Any, data: Dict[str, Any],
                    impl: str) -> Dict[str, float]:
    """The general-rule metrics of re-ranked distances, each side with its
    own evaluator (untimed): ours ``rank_queries``, the peer CLIP-ReID's
    ``eval_func``, as CLIP-ReID evaluates with re-ranking on."""
    import torch
    scores = torch.from_numpy(dist).neg()
    if impl == 'ours':
        return _reid_ours_from_scores(dict(data, scores=scores), 'general')
    return run_reid_clipreid(dict(data, scores=scores), 'general')


# --------------------------------------------------------------- worker ----
def _maxrss_bytes() -> int:
    """Peak resident set size of this process so far (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measurement in this (fresh) process.

    Args:
        spec (dict): ``impl``, ``num_query``, ``num_gallery`` and, for
            section ``metric`` (the default), ``num_ids``; for section
            ``reid``: ``section='reid'``, ``kind`` and ``mode``.

    Returns:
        dict: ``time_s`` (wall), ``cpu_s`` (user + system, all threads),
        ``peak_bytes`` (maxrss growth over the baseline after imports and
        feature creation) and ``metrics``.
    """
    import torch  # noqa: F401  (imported before the baseline on purpose)
    if spec.get('threads'):
        torch.set_num_threads(spec['threads'])
    section = spec.get('section', 'metric')
    dist: Dict[str, Any] = {}
    if section == 'rerank':
        import mmreid_clip.evaluation  # noqa: F401
        data = make_reid_data(spec['kind'], spec['num_query'],
                              spec['num_gallery'])

        def run() -> Dict[str, float]:
            dist['value'] = RERANK_RUNNERS[spec['impl']](data, spec)
            return {}
    elif section == 'reid':
        if spec['impl'].startswith('ours'):
            # the whole package (the metrics too: the scores runner imports
            # the junk rule), so that no import lands inside the clock
            import mmreid_clip.evaluation  # noqa: F401
        else:
            import numpy  # noqa: F401
        data = make_reid_data(spec['kind'], spec['num_query'],
                              spec['num_gallery'])
        if spec['impl'] == 'ours':
            data['records'] = reid_records(data)

        def run() -> Dict[str, float]:
            return REID_RUNNERS[spec['impl']](data, spec['mode'])
    else:
        import mmreid_clip.evaluation.functional  # noqa: F401
        data = make_features(spec['num_query'], spec['num_gallery'],
                             spec['num_ids'])

        def run() -> Dict[str, float]:
            return RUNNERS[spec['impl']](data)

    if spec['impl'].endswith(SCORES):
        # the score matrix is the input here (datasets.md §6.3), like a saved
        # .npy
        data['scores'] = (data['qf'] @ data['gf'].t()).contiguous()
    warmup = None
    if spec['impl'].startswith('ours'):
        warmup = _warm_up()

    base = _maxrss_bytes()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    metrics = run()
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    peak = max(0, _maxrss_bytes() - base)
    if section == 'rerank':
        # after the clock and the memory reading: the metrics of the
        # distances, and the distances for the parent to compare
        metrics = _rerank_metrics(dist['value'], data, spec['impl'])
        if spec.get('dump'):
            import numpy as np
            np.save(spec['dump'], dist['value'])
    return {
        'time_s': elapsed,
        'cpu_s': cpu,
        'peak_bytes': peak,
        'metrics': metrics,
        'warmup_s': warmup,
    }


def _warm_up() -> float:
    """Load ours' compiled ranking kernel before the clock starts.

    numba compiles the kernel once per machine (cached on disk) and loads
    it at the first call of each process; that one-time cost is like an
    import, so it is timed here, reported apart (``warmup_s``), and kept
    out of the measured evaluation.
    """
    import torch
    from mmreid_clip.evaluation.functional import rank_queries
    start = time.perf_counter()
    # enough rows for a block per thread: the kernel's helper threads start
    # here too, once per process
    rows = 64 * torch.get_num_threads() + 1
    for dtype in (torch.float32, torch.float64):
        rank_queries(
            scores=torch.zeros(rows, 3, dtype=dtype),
            query_labels=[0, 1] * (rows // 2) + [0],
            gallery_labels=[0, 1, 1])
    return time.perf_counter() - start


def measure_spec(spec: Dict[str, Any], repeats: int) -> Dict[str, Any]:
    """Best-of-``repeats`` wall time, each run in a fresh subprocess.

    Args:
        spec (dict): The worker's spec (see :func:`worker`).
        repeats (int): Number of runs.

    Returns:
        dict: ``time_s`` (best wall time), ``times`` (all), ``cpu_s`` (the
        CPU time of the best run), ``peak_mib`` (the largest of the runs)
        and ``metrics`` (of the first run).

    Raises:
        RuntimeError: A worker failed.
    """
    runs: List[Dict[str, Any]] = []
    env = None
    if spec.get('threads'):
        # the BLAS/OpenMP pools of NumPy and torch, read at their import
        env = dict(
            os.environ, **{
                name: str(spec['threads'])
                for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS',
                             'OPENBLAS_NUM_THREADS')
            })
    for _ in range(repeats):
        proc = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__), '--worker',
                json.dumps(spec)
            ],
            capture_output=True,
            text=True,
            env=env)
        if proc.returncode != 0:
            raise RuntimeError(
                f'{spec["impl"]} at {spec["num_query"]}x'
                f'{spec["num_gallery"]} failed (exit {proc.returncode}):\n'
                f'{proc.stderr}')
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r['time_s'])
    return {
        'time_s': best['time_s'],
        'times': [r['time_s'] for r in runs],
        'warmup_s': [r['warmup_s'] for r in runs],
        'cpu_s': best['cpu_s'],
        'peak_mib': max(r['peak_bytes'] for r in runs) / 2**20,
        'metrics': runs[0]['metrics'],
    }


# -------------------------------------------------------------- section ----
def bench_metric(shapes: List[tuple],
                 repeats: int,
                 threads: Optional[int] = None) -> Dict[str, Any]:
    """Section ``metric``: every implementation at every shape.

    Args:
        shapes (list[tuple]): ``(name, Q, G, ids)``.
        repeats (int): Runs per measurement (best time kept).
        threads (int, optional): Threads of every worker (None: torch's
            default).

    Returns:
        dict: ``rows`` (one per shape) and ``mismatches`` (messages).
    """
    rows, mismatches = [], []
    for name, nq, ng, nid in shapes:
        row: Dict[str, Any] = {
            'name': name,
            'num_query': nq,
            'num_gallery': ng,
            'num_ids': nid,
            'results': {},
            'skipped': {},
        }
        for impl in IMPLS:
            avail = available_ram_gb()
            if (impl.startswith('peer') and nq * ng > PEER_BIG_CELLS
                    and avail < PEER_MIN_AVAILABLE_GB):
                why = (f'builds several Q x G arrays (~6+ GB), only '
                       f'{avail:.1f} GB available (< '
                       f'{PEER_MIN_AVAILABLE_GB:.0f} GB)')
                print(f'  [{name}] skipping {impl}: {why}', flush=True)
                row['skipped'][impl] = why
                continue
            print(f'  [{name} {nq}x{ng}] {impl} ...', end='', flush=True)
            res = measure_spec(
                dict(
                    impl=impl,
                    num_query=nq,
                    num_gallery=ng,
                    num_ids=nid,
                    threads=threads), repeats)
            print(f' {res["time_s"]:.2f} s, {res["peak_mib"]:.0f} MiB',
                  flush=True)
            row['results'][impl] = res
        res = row['results']
        ratios: Dict[str, Optional[float]] = {}
        for suffix in ('', SCORES):
            _compare(row, ratios, suffix, name, mismatches)
        ratios['ours_over_matmul_time'] = (
            res['ours']['time_s'] / res['matmul']['time_s'])
        if 'peer' in res:
            ratios['peer_over_matmul_time'] = (
                res['peer']['time_s'] / res['matmul']['time_s'])
        row['ratios'] = ratios
        rows.append(row)
    return {'rows': rows, 'mismatches': mismatches}


def _compare(row: Dict[str, Any],
             ratios: Dict[str, float],
             suffix: str,
             label: str,
             mismatches: List[str],
             peer_name: str = 'peer',
             tolerance: float = TOLERANCE) -> None:
    """Ours against the sort bound and one peer for one kind of input.

    Adds the ``*suffix`` ratios (``peer_over_ours_*`` for the peer named
    ``peer``, ``{peer_name}_over_ours_*`` for another), keeps the row's
    largest metric difference (``max_abs_diff``) and ``agree`` (False when
    a metric differs by more than ``tolerance`` or, in ``reid``, the
    number of valid queries differs), and appends a message per
    disagreement. A skipped peer only gives the sort-bound ratio.

    Args:
        row (dict): A result row with its ``results``.
        ratios (dict): Where the ratios go.
        suffix (str): ``''`` (from features) or :data:`SCORES`.
        label (str): Names the row in the messages.
        mismatches (list[str]): Collects the messages.
        peer_name (str): The peer's implementation name without suffix.
        tolerance (float): Largest metric difference (percentage points).
    """
    res = row['results']
    ours, peer = res['ours' + suffix], res.get(peer_name + suffix)
    sort = res['sort_scores' if suffix else 'sort_bound']
    ratios['ours_over_sort_time' + suffix] = ours['time_s'] / sort['time_s']
    row.setdefault('max_abs_diff', 0.0)
    if peer is None:
        return
    ratios[f'{peer_name}_over_ours_time{suffix}'] = (
        peer['time_s'] / ours['time_s'])
    ratios[f'{peer_name}_over_ours_memory{suffix}'] = (
        peer['peak_mib'] / max(ours['peak_mib'], 1e-9))
    diffs = {
        k: abs(ours['metrics'][k] - peer['metrics'][k])
        for k in METRIC_KEYS
    }
    row['max_abs_diff'] = max(row['max_abs_diff'], *diffs.values())
    row.setdefault('agree', True)
    if (max(diffs.values()) > tolerance or ours['metrics'].get('num_valid')
            != peer['metrics'].get('num_valid')):
        row['agree'] = False
        mismatches.append(f'{label} ({suffix or "features"}): ours '
                          f'{ours["metrics"]} vs {peer_name} '
                          f'{peer["metrics"]} (|diff| {diffs})')


def _times(v: Optional[float]) -> str:
    return '-' if v is None else f'{v:.1f}x'


def format_table(rows: List[Dict[str, Any]]) -> str:
    """Plain-text (Markdown) tables of the metric section: from features,
    then from a given score matrix."""
    lines = [
        'From features (each evaluator computes the similarity matmul):', '',
        '| shape | Q x G | ours s | peer s | sort s | matmul s | ours MiB '
        '| peer MiB | sort MiB | peer/ours | ours/sort | ours/matmul '
        '| peer/matmul | R@1 | mAP | mINP | agree |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]

    def cell(row: Dict[str, Any], impl: str, key: str, fmt: str) -> str:
        res = row['results'].get(impl)
        return 'skipped' if res is None else format(res[key], fmt)

    for row in rows:
        ratios, m = row['ratios'], row['results']['ours']['metrics']
        lines.append(
            f'| {row["name"]} | {row["num_query"]:,} x '
            f'{row["num_gallery"]:,} | {cell(row, "ours", "time_s", ".2f")} '
            f'| {cell(row, "peer", "time_s", ".2f")} '
            f'| {cell(row, "sort_bound", "time_s", ".2f")} '
            f'| {cell(row, "matmul", "time_s", ".2f")} '
            f'| {cell(row, "ours", "peak_mib", ".0f")} '
            f'| {cell(row, "peer", "peak_mib", ".0f")} '
            f'| {cell(row, "sort_bound", "peak_mib", ".0f")} '
            f'| {_times(ratios.get("peer_over_ours_time"))} '
            f'| {ratios["ours_over_sort_time"]:.2f} '
            f'| {ratios["ours_over_matmul_time"]:.2f} '
            f'| {_times(ratios.get("peer_over_matmul_time"))} '
            f'| {m["R@1"]:.2f} | {m["mAP"]:.2f} | {m["mINP"]:.2f} '
            f'| {row.get("agree", "-")} |')
    lines += [
        '', 'From a given score matrix (the same matrix for all):', '',
        '| shape | ours s | peer s | sort s | ours MiB | peer MiB '
        '| peer/ours | ours/sort | ours warm-up s |', '|---|---|---|---|---|'
        '---|---|---|---|'
    ]
    for row in rows:
        ratios = row['ratios']
        warm = row['results']['ours_scores'].get('warmup_s') or [None]
        lines.append(
            f'| {row["name"]} | {cell(row, "ours_scores", "time_s", ".3f")} '
            f'| {cell(row, "peer_scores", "time_s", ".2f")} '
            f'| {cell(row, "sort_scores", "time_s", ".2f")} '
            f'| {cell(row, "ours_scores", "peak_mib", ".0f")} '
            f'| {cell(row, "peer_scores", "peak_mib", ".0f")} '
            f'| {_times(ratios.get("peer_over_ours_time" + SCORES))} '
            f'| {ratios["ours_over_sort_time" + SCORES]:.2f} '
            f'| {"-" if warm[0] is None else format(min(warm), ".2f")} |')
    return '\n'.join(lines)


def bench_reid(shapes: List[tuple],
               repeats: int,
               threads: Optional[int] = None) -> Dict[str, Any]:
    """Section ``reid``: ours and the peers per (shape, mode), sort bound.

    The loop peer runs from features and scores, the vectorised peers of
    :data:`VECTORISED_PEERS` from scores, each in the modes it has.

    Args:
        shapes (list[tuple]): ``(name, Q, G, kind, modes)``.
        repeats (int): Runs per measurement (best time kept).
        threads (int, optional): Threads of every worker (None: torch's
            default).

    Returns:
        dict: ``rows`` (one per shape and mode) and ``mismatches``.
    """
    rows, mismatches = [], []
    for name, nq, ng, kind, modes in shapes:
        base = {
            'section': 'reid',
            'kind': kind,
            'num_query': nq,
            'num_gallery': ng,
            'threads': threads
        }
        print(f'  [{name} {nq}x{ng}] sort_bound ...', end='', flush=True)
        sort_res = measure_spec(
            dict(base, impl='sort_bound', mode='general'), repeats)
        print(f' {sort_res["time_s"]:.2f} s, {sort_res["peak_mib"]:.0f} MiB',
              flush=True)
        print(f'  [{name} {nq}x{ng}] matmul ...', end='', flush=True)
        matmul_res = measure_spec(
            dict(base, impl='matmul', mode='general'), repeats)
        print(f' {matmul_res["time_s"]:.2f} s', flush=True)
        print(f'  [{name} {nq}x{ng}] sort_scores ...', end='', flush=True)
        sort_scores_res = measure_spec(
            dict(base, impl='sort_scores', mode='general'), repeats)
        print(f' {sort_scores_res["time_s"]:.2f} s', flush=True)
        for mode in modes:
            row: Dict[str, Any] = {
                'name': name,
                'kind': kind,
                'mode': mode,
                'num_query': nq,
                'num_gallery': ng,
                'results': {
                    'sort_bound': sort_res,
                    'matmul': matmul_res,
                    'sort_scores': sort_scores_res,
                },
            }
            for impl in REID_IMPLS:
                peer = impl[:-len(SCORES)]
                if mode not in VECTORISED_PEERS.get(peer, (mode, )):
                    continue
                print(f'  [{name} {mode}] {impl} ...', end='', flush=True)
                res = measure_spec(dict(base, impl=impl, mode=mode), repeats)
                print(f' {res["time_s"]:.2f} s, {res["peak_mib"]:.0f} MiB',
                      flush=True)
                row['results'][impl] = res
            res = row['results']
            row['ratios'] = {
                'ours_over_matmul_time':
                res['ours']['time_s'] / matmul_res['time_s'],
                'peer_over_matmul_time':
                res['peer']['time_s'] / matmul_res['time_s'],
            }
            for suffix in ('', SCORES):
                _compare(row, row['ratios'], suffix, f'{name} {mode}',
                         mismatches, tolerance=REID_TOLERANCE)
            for peer in VECTORISED_PEERS:
                _compare(row, row['ratios'], SCORES, f'{name} {mode}',
                         mismatches, peer, REID_TOLERANCE)
            rows.append(row)
    return {'rows': rows, 'mismatches': mismatches}


def format_reid_table(rows: List[Dict[str, Any]]) -> str:
    """A plain-text (Markdown) table of the reid section."""
    lines = [
        '| shape | mode | Q x G | ours s (cpu) | loop peer s (cpu) '
        '| sort s (cpu) '
        '| matmul s (cpu) | ours MiB | loop peer MiB | sort MiB | loop/ours '
        '| ours/sort | ours/matmul | loop/matmul | R@1 | mAP | mINP '
        '| valid q | agree |', '|---|---|---|---|---|---|---|---|---|'
        '---|---|---|---|---|---|---|---|---|---|'
    ]

    def secs(res: Dict[str, Any]) -> str:
        return f'{res["time_s"]:.2f} ({res["cpu_s"]:.2f})'

    for row in rows:
        res, ratios = row['results'], row['ratios']
        m = res['ours']['metrics']
        lines.append(
            f'| {row["name"]} | {row["mode"]} | {row["num_query"]:,} x '
            f'{row["num_gallery"]:,} | {secs(res["ours"])} '
            f'| {secs(res["peer"])} | {secs(res["sort_bound"])} '
            f'| {secs(res["matmul"])} '
            f'| {res["ours"]["peak_mib"]:.0f} | {res["peer"]["peak_mib"]:.0f} '
            f'| {res["sort_bound"]["peak_mib"]:.0f} '
            f'| {ratios["peer_over_ours_time"]:.1f}x '
            f'| {ratios["ours_over_sort_time"]:.2f} '
            f'| {ratios["ours_over_matmul_time"]:.2f} '
            f'| {ratios["peer_over_matmul_time"]:.1f}x '
            f'| {m["R@1"]:.2f} | {m["mAP"]:.2f} | {m["mINP"]:.2f} '
            f'| {m["num_valid"]} | {row["agree"]} |')
    lines += [
        '', 'From a given score matrix (the same matrix for all):', '',
        '| shape | mode | ours s (cpu) | loop peer s (cpu) | sort s (cpu) '
        '| ours MiB | loop peer MiB | loop/ours | ours/sort |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        res, ratios = row['results'], row['ratios']
        lines.append(
            f'| {row["name"]} | {row["mode"]} | {secs(res["ours_scores"])} '
            f'| {secs(res["peer_scores"])} | {secs(res["sort_scores"])} '
            f'| {res["ours_scores"]["peak_mib"]:.0f} '
            f'| {res["peer_scores"]["peak_mib"]:.0f} '
            f'| {ratios["peer_over_ours_time" + SCORES]:.1f}x '
            f'| {ratios["ours_over_sort_time" + SCORES]:.2f} |')
    lines += [
        '', 'Against the vectorised peers, from the score matrix (CLIP-ReID '
        'eval_func: general rule only):', '',
        '| shape | mode | ours s (cpu) | CLIP-ReID s (cpu) | CCReID s (cpu) '
        '| loop peer s | CLIP-ReID / ours | CCReID / ours | loop / ours '
        '| ours MiB | CLIP-ReID MiB | CCReID MiB | max abs diff | agree |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]

    def opt(row: Dict[str, Any], impl: str, key: str) -> str:
        res = row['results'].get(impl)
        if res is None:
            return '-'
        return secs(res) if key == 'secs' else f'{res[key]:.0f}'

    for row in rows:
        res, ratios = row['results'], row['ratios']
        ours = res['ours_scores']
        lines.append(
            f'| {row["name"]} | {row["mode"]} | {ours["time_s"]:.3f} '
            f'({ours["cpu_s"]:.3f}) '
            f'| {opt(row, "clipreid_scores", "secs")} '
            f'| {opt(row, "ccreid_scores", "secs")} '
            f'| {res["peer_scores"]["time_s"]:.2f} '
            f'| {_times(ratios.get("clipreid_over_ours_time" + SCORES))} '
            f'| {_times(ratios.get("ccreid_over_ours_time" + SCORES))} '
            f'| {_times(ratios.get("peer_over_ours_time" + SCORES))} '
            f'| {res["ours_scores"]["peak_mib"]:.0f} '
            f'| {opt(row, "clipreid_scores", "peak_mib")} '
            f'| {opt(row, "ccreid_scores", "peak_mib")} '
            f'| {row["max_abs_diff"]:.1e} | {row["agree"]} |')
    return '\n'.join(lines)


def bench_rerank(shapes: List[tuple],
                 settings: List[Tuple[int, int, float]],
                 repeats: int,
                 threads: Optional[int] = None) -> Dict[str, Any]:
    """Section ``rerank``: ours (``convention='released'``) against the
    released code's dense algorithm, per shape and (k1, k2, lambda).

    Times the re-ranking alone (each in a fresh process, best of
    ``repeats``); the metrics of the distances come after the clock, each
    with its side's evaluator. The distances of the first run of each side
    are written to a temporary folder and compared whole: ``max_abs_diff``
    (and ``num_differ``, the entries that differ at all) must be 0 up to
    :data:`RERANK_TOLERANCE`, and the metrics within
    :data:`REID_TOLERANCE`, or the row disagrees.

    Args:
        shapes (list[tuple]): ``(name, Q, G, kind)``.
        settings (list[tuple]): ``(k1, k2, lambda)``.
        repeats (int): Runs per measurement (best time kept).
        threads (int, optional): Threads of every worker.

    Returns:
        dict: ``rows`` (one per shape and setting) and ``mismatches``.
    """
    import tempfile

    import numpy as np
    rows, mismatches = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, nq, ng, kind in shapes:
            for k1, k2, lam in settings:
                row: Dict[str, Any] = dict(
                    name=name,
                    num_query=nq,
                    num_gallery=ng,
                    pool=nq + ng,
                    k1=k1,
                    k2=k2,
                    lambda_value=lam,
                    results={})
                dists = {}
                for impl in RERANK_RUNNERS:
                    dump = os.path.join(tmp, f'{impl}.npy')
                    print(f'  [{name} pool {nq + ng} k1/k2 {k1}/{k2}] '
                          f'{impl} ...', end='', flush=True)
                    res = measure_spec(
                        dict(
                            section='rerank',
                            impl=impl,
                            kind=kind,
                            num_query=nq,
                            num_gallery=ng,
                            k1=k1,
                            k2=k2,
                            threads=threads,
                            dump=dump,
                            **{'lambda': lam}), repeats)
                    print(f' {res["time_s"]:.2f} s, '
                          f'{res["peak_mib"]:.0f} MiB', flush=True)
                    row['results'][impl] = res
                    dists[impl] = np.load(dump)
                diff = np.abs(dists['ours'] - dists['peer'])
                row['max_abs_diff'] = float(diff.max())
                row['num_differ'] = int(np.count_nonzero(diff))
                del dists, diff
                ours, peer = row['results']['ours'], row['results']['peer']
                row['ratios'] = dict(
                    peer_over_ours_time=peer['time_s'] / ours['time_s'],
                    peer_over_ours_memory=peer['peak_mib'] /
                    max(ours['peak_mib'], 1e-9))
                metric_diff = max(
                    abs(ours['metrics'][k] - peer['metrics'][k])
                    for k in METRIC_KEYS)
                row['max_metric_diff'] = metric_diff
                row['agree'] = (
                    row['max_abs_diff'] <= RERANK_TOLERANCE
                    and metric_diff <= REID_TOLERANCE and
                    ours['metrics']['num_valid']
                    == peer['metrics']['num_valid'])
                if not row['agree']:
                    mismatches.append(
                        f'rerank {name} {k1}/{k2}/{lam}: distances differ '
                        f'by up to {row["max_abs_diff"]:.3g} '
                        f'({row["num_differ"]} entries), metrics ours '
                        f'{ours["metrics"]} vs peer {peer["metrics"]}')
                rows.append(row)
    return {'rows': rows, 'mismatches': mismatches}


def format_rerank_table(rows: List[Dict[str, Any]]) -> str:
    """A plain-text (Markdown) table of the rerank section."""
    lines = [
        '| shape | pool | k1/k2/lambda | ours s (cpu) | peer s (cpu) '
        '| ours MiB | peer MiB | peer / ours time | peer / ours memory '
        '| max abs diff (entries) | R@1 | mAP | agree |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        ours, peer = row['results']['ours'], row['results']['peer']
        m = ours['metrics']
        lines.append(
            f'| {row["name"]} | {row["pool"]:,} '
            f'| {row["k1"]}/{row["k2"]}/{row["lambda_value"]} '
            f'| {ours["time_s"]:.2f} ({ours["cpu_s"]:.2f}) '
            f'| {peer["time_s"]:.2f} ({peer["cpu_s"]:.2f}) '
            f'| {ours["peak_mib"]:.0f} | {peer["peak_mib"]:.0f} '
            f'| {row["ratios"]["peer_over_ours_time"]:.1f}x '
            f'| {row["ratios"]["peer_over_ours_memory"]:.1f}x '
            f'| {row["max_abs_diff"]:.1e} ({row["num_differ"]}) '
            f'| {m["R@1"]:.2f} | {m["mAP"]:.2f} | {row["agree"]} |')
    return '\n'.join(lines)


def bench_cuda_section(quick: bool) -> Dict[str, Any]:
    """ViT-B/16 CFine / CCAF training throughput on the GPU (bf16
    autocast, peak memory; ``bench_cuda.py``), or why it was skipped."""
    import torch
    if not torch.cuda.is_available():
        print('section cuda: skipped, no CUDA device visible')
        return dict(skipped='no CUDA device visible')
    import bench_cuda
    print('section cuda (ViT-B/16 training throughput, bf16 autocast):')
    out = bench_cuda.run(quick=quick, device='cuda')
    print(bench_cuda.format_report(out))
    return out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick', action='store_true', help='small shapes, one run each')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument(
        '--sections',
        nargs='+',
        default=None,
        choices=['metric', 'reid', 'rerank', 'cuda'],
        help='sections to run (default: metric, reid and rerank, plus cuda '
        'when a GPU is visible)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch / BLAS threads of every worker (default: torch\'s '
        'default, the number of cores)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=None,
        help='runs per measurement (default 3, 1 with --quick)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark; 1 when the implementations disagree."""
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    if args.sections is None:
        import torch
        gpu = ['cuda'] if torch.cuda.is_available() else []
        args.sections = ['metric', 'reid', 'rerank'] + gpu
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f'--threads must be >= 1, got {args.threads}')
        import torch
        torch.set_num_threads(args.threads)  # machine_info reports it
    machine = machine_info()
    print(f'machine: {machine["cpu"]}, {machine["cores"]} cores, torch '
          f'{machine["torch"]} with {machine["torch_threads"]} threads, '
          f'CUDA {machine["cuda"]}, {machine["available_ram_gb"]} GB RAM '
          'available')
    print(f'best of {repeats} run(s), each in a fresh process')
    report: Dict[str, Any] = {
        'date': datetime.datetime.now().isoformat(timespec='seconds'),
        'machine': machine,
        'quick': args.quick,
        'repeats': repeats,
        'threads': args.threads,
        'tolerance': TOLERANCE,
        'reid_tolerance': REID_TOLERANCE,
        'sections': {},
    }
    failed = []
    if 'metric' in args.sections:
        print('section metric (text-to-image retrieval, D=512):')
        out = bench_metric(QUICK_SHAPES if args.quick else FULL_SHAPES,
                           repeats, args.threads)
        report['sections']['metric'] = out
        print(format_table(out['rows']))
        failed += out['mismatches']
    if 'reid' in args.sections:
        print('section reid (image ReID with junk removal, D=512):')
        out = bench_reid(REID_QUICK_SHAPES if args.quick else REID_FULL_SHAPES,
                         repeats, args.threads)
        report['sections']['reid'] = out
        print(format_reid_table(out['rows']))
        failed += out['mismatches']
    if 'rerank' in args.sections:
        print('section rerank (k-reciprocal re-ranking, released values):')
        out = bench_rerank(
            RERANK_QUICK_SHAPES if args.quick else RERANK_FULL_SHAPES,
            RERANK_QUICK_SETTINGS if args.quick else RERANK_SETTINGS,
            repeats, args.threads)
        report['sections']['rerank'] = out
        print(format_rerank_table(out['rows']))
        failed += out['mismatches']
    if 'cuda' in args.sections:
        report['sections']['cuda'] = bench_cuda_section(args.quick)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'results written to {args.json}')
    if failed:
        print('ERROR: ours and a peer disagree beyond the tolerance '
              f'({TOLERANCE} in metric, {REID_TOLERANCE} in reid, '
              f'{RERANK_TOLERANCE} on re-ranked distances):\n' +
              '\n'.join(failed),
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
