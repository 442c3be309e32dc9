"""Image person re-identification metric (standard and cloth-changing).

This module holds :class:`ReIDMetric` (collecting the samples, ranking each
setting, the numbers); beside it are :mod:`.reid_junk` (the junk rule of
each mode) and :mod:`.reid_settings` (the benchmark presets and the
settings validation). Their names stay importable from here.
"""
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmreid_clip.evaluation.functional import (RERANK_CONVENTIONS,  # noqa
                                               JunkFn,
                                               LabelJunkFn,
                                               k_reciprocal_rerank,
                                               rank_queries, summarize)
from mmreid_clip.registry import METRICS
from .args import as_int, check_ranking_args
from .reid_junk import (MODES, _check_mode, reid_junk_fn,  # noqa: F401
                        reid_label_junk_fn)
from .reid_settings import (_CAMERA_KEYS, _DEFAULT_SETTING,  # noqa: F401
                            _SETTING_KEYS, ReIDSettingsMixin)


@METRICS.register_module()
class ReIDMetric(ReIDSettingsMixin, BaseMetric):
    """R@K, mAP and mINP of image ReID, standard and cloth-changing.

    Every evaluated item carries ``img_feat`` (``D``), ``pid``, ``camid``,
    ``clothes_id`` and ``subset`` (+ ``tracklet_id`` on DeepChange), as
    the cloth-changing datasets (``mmreid_clip/datasets/cloth_changing``)
    and ``PackReIDInputs`` put them on the DataSample and the models'
    ``predict`` mode adds ``img_feat``. Each *setting* ranks
    the items of one subset (the queries) against those of another (the
    gallery) and is reported under its own name.

    Per query q, a gallery item g of the same pid is *junk* (removed from
    q's ranking, neither positive nor negative) or a *positive*; items of
    other pids are negatives (``docs/methods/datasets.md`` §5.2, §5.3;
    "camera" is the setting's ``camera_key``):

    * ``general``: junk = same camera; positive = other camera;
    * ``cloth-changing``: junk = same camera or same clothes; positive =
      other camera and other clothes;
    * ``same-clothes``: junk = same camera or other clothes; positive =
      other camera and same clothes.

    The score is the dot product of the L2-normalised features (cosine);
    the ranking is the stable descending order, ties broken by gallery
    index (the dataset order), as in :func:`~mmreid_clip.evaluation.
    functional.rank_queries`, which computes it exactly in chunks without
    any ``Q x G`` array or per-query loop. With positives at junk-free
    ranks ``r_1 < ... < r_m``::

        R@K = mean_q 1[r_1 <= K],  mAP = mean_q (1/m) sum_i i / r_i,
        mINP = mean_q m / r_m

    in percent, over the *valid* queries (``m >= 1``); queries without a
    positive are skipped and counted.

    Settings. ``settings`` is a list of dicts, one per reported setting::

        dict(name='cc',              # key namespace, unique
             query='query',          # subset value of the queries
             gallery='gallery',      # subset value of the gallery
             mode='cloth-changing',  # one of MODES
             cameras=None,           # or camid values kept on both sides
             camera_key='camid')     # or 'tracklet_id' (DeepChange)

    (only ``name`` is required; the others default as shown, mode
    ``general``), or the name of a preset of :attr:`PRESETS` (also
    available as :meth:`preset`):

    * ``'ltcc'`` (the default; also CCVID-style sets): ``general`` and
      ``cc`` (cloth-changing) on query vs gallery;
    * ``'prcc'``: ``sc`` = query_sc (cam B) vs gallery (cam A) and ``cc`` =
      query_cc (cam C) vs gallery, both with the *general* rule, as CAL
      evaluates PRCC (full multi-shot cam-A gallery);
    * ``'vc_clothes'``: ``general``; ``sc`` keeps cameras 2 and 3, ``cc``
      cameras 3 and 4, both with the general rule (the VC-Clothes paper's
      protocol). The camera numbers are the dataset's own (1-4, as in the
      file names): the dataset must keep them;
    * ``'deepchange'``: ``general`` with the tracklet id as the camera;
    * ``'market'``: ``general`` only (Market-1501-style sets, Celeb-reID,
      LaST);
    * ``'market1501'``, ``'msmt17'``, ``'dukemtmc'``, ``'occluded_duke'``:
      ``general`` only, the standard protocol of these benchmarks (Zheng
      et al., ICCV 2015): same pid and same camera is junk, distractors
      (Market-1501's pid 0) are negatives; the datasets of
      ``mmreid_clip/datasets/reid`` leave the junk images (pid -1) out.

    Re-ranking. ``rerank=dict(k1=20, k2=6, lambda_value=0.3)`` (or True for
    these defaults; ``max_items`` may be added) replaces, per setting, the
    cosine scores by the negated k-reciprocal distances of
    :func:`~mmreid_clip.evaluation.functional.k_reciprocal_rerank` over
    the setting's queries and gallery; junk rules and metrics are
    unchanged. ``convention='released'`` in the dict reproduces the
    authors' released re-ranking code, which published re-ranked numbers
    come from (and which differs from the paper's equations by several
    points); the default, ``'paper'``, follows the equations (see
    ``k_reciprocal_rerank``'s module doc).

    Collection. :meth:`process` keeps one record per data sample (the
    feature on the CPU in float32 and the labels); mmengine's
    ``collect_results`` gathers the ranks' records in dataset order and
    truncates them to the dataset size, which drops the samples a
    distributed sampler repeats to pad the last batch when the size is not
    divisible by the world size. The metric relies on that (items have no
    unique id to de-duplicate on): evaluate with mmengine's loops or
    ``Evaluator.evaluate(len(dataset))``.

    Args:
        settings (list[dict] | str, optional): The settings or a preset
            name. Defaults to ``'ltcc'`` (general + cloth-changing).
        topk (Sequence[int]): The K of the R@K entries. Defaults to
            (1, 5, 10).
        rerank (dict | bool, optional): k-reciprocal re-ranking parameters
            (``k1``, ``k2``, ``lambda_value``, ``max_items``,
            ``convention``); None or False to rank the cosine scores.
            Defaults to None.
        chunk_size (int, optional): Queries per ranking chunk; None picks
            it from a 256 MiB budget.
        normalize (bool): L2-normalise the features before scoring (cosine
            similarity whatever the model returns). Defaults to True; with
            False the features are used as they are (the models already
            normalise them; re-ranking assumes unit norms).
        collect_device (str): 'cpu' or 'gpu', used to gather results across
            ranks. Defaults to 'cpu'.
        prefix (str, optional): Namespace before the keys, e.g.
            ``'prcc'`` gives ``'prcc/cc/mAP'``. Defaults to none: the keys
            are ``'{name}/R@1'``, ``'{name}/R@5'``, ``'{name}/R@10'``,
            ``'{name}/mAP'``, ``'{name}/mINP'`` (percent) and
            ``'{name}/num_valid_queries'`` per setting.
        collect_dir (str, optional): Folder used to gather results when
            ``collect_device='cpu'``.
    """
    # '' rather than None: BaseMetric warns when the prefix is None, and the
    # setting names already namespace the keys
    default_prefix: Optional[str] = ''

    def __init__(self,
                 settings: Optional[Union[str, Sequence[dict]]] = None,
                 topk: Sequence[int] = (1, 5, 10),
                 rerank: Optional[Union[dict, bool]] = None,
                 chunk_size: Optional[int] = None,
                 normalize: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.topk = check_ranking_args(topk, chunk_size)
        self.chunk_size = chunk_size
        self.normalize = normalize
        if settings is None:
            settings = 'ltcc'
        self.settings = self._check_settings(settings)
        if rerank is True:
            rerank = {}
        elif rerank is False:
            rerank = None
        if rerank is not None:
            if not isinstance(rerank, dict):
                raise TypeError('rerank must be a dict of k_reciprocal_rerank '
                                f'arguments, True or None, got {rerank!r}')
            unknown = set(rerank) - {
                'k1', 'k2', 'lambda_value', 'max_items', 'convention'
            }
            if unknown:
                raise ValueError(
                    f'unknown rerank arguments {sorted(unknown)}; expected '
                    'k1, k2, lambda_value, max_items, convention')
            # checked here rather than at the first evaluation
            convention = rerank.get('convention', 'paper')
            if convention not in RERANK_CONVENTIONS:
                raise ValueError(
                    f'unknown re-ranking convention {convention!r} in '
                    f'rerank; choose from {RERANK_CONVENTIONS} (\'released\' '
                    'reproduces published re-ranked numbers)')
            # the paper's defaults spelled out, so the log shows them
            rerank = {**dict(k1=20, k2=6, lambda_value=0.3), **rerank}
        self.rerank = rerank
        # the sample keys the settings read, and which settings need them
        self._needs: Dict[str, List[str]] = {}
        for s in self.settings:
            keys = [s['camera_key']]
            if s['cameras'] is not None:
                keys.append('camid')
            if s['mode'] != 'general':
                keys.append('clothes_id')
            for key in keys:
                self._needs.setdefault(key, [])
                if s['name'] not in self._needs[key]:
                    self._needs[key].append(s['name'])

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each sample's feature (CPU, float32) and labels.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): The model's outputs as dicts
                (mmengine's Evaluator converts DataSample to dict;
                DataSample objects are accepted too) with ``img_feat``,
                ``pid`` (or ``gt_label``), ``subset`` and the keys the
                settings read: ``camid`` (or ``tracklet_id``), and
                ``clothes_id`` for the cloth-changing and same-clothes
                modes.

        Raises:
            KeyError: a sample misses a key it needs (the message names
                the key, the sample and the settings reading it).
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            where = sample.get('img_path') or (
                f'#{len(self.results)} of this process')
            feat = sample.get('img_feat')
            if feat is None:
                raise KeyError(
                    f'ReIDMetric: data sample {where} has no `img_feat`: the '
                    'model must attach it in predict mode')
            pid = sample.get('pid')
            if pid is None:
                pid = sample.get('gt_label')
            if pid is None:
                raise KeyError(f'ReIDMetric: data sample {where} has no '
                               '`pid` (nor `gt_label`)')
            subset = sample.get('subset')
            if subset is None:
                raise KeyError(
                    f'ReIDMetric: data sample {where} has no `subset` '
                    "('query', 'gallery', 'query_sc', ...): the dataset "
                    'must set it on test items')
            record = dict(
                # copy: a row view of the batch output would pickle (when
                # ranks gather) the whole batch storage
                img_feat=torch.as_tensor(feat).detach().to(
                    device='cpu', dtype=torch.float32, copy=True).reshape(-1),
                pid=as_int(pid, 'pid'),
                subset=str(subset))
            for key, names in self._needs.items():
                value = sample.get(key)
                if value is None:
                    raise KeyError(
                        f'ReIDMetric: data sample {where} has no `{key}`, '
                        f'which setting(s) {names} need')
                record[key] = as_int(value, key)
            self.results.append(record)

    def _setting(self, setting: dict, feats: Tensor, labels: Dict[str, Tensor],
                 subsets: np.ndarray) -> Dict[str, float]:
        """R@K, mAP, mINP and valid-query count of one setting."""
        name = setting['name']
        logger = MMLogger.get_current_instance()
        found = sorted(set(subsets.tolist()))
        keep = np.ones(len(subsets), dtype=bool)
        if setting['cameras'] is not None:
            keep &= np.isin(labels['camid'].numpy(), setting['cameras'])
        query = np.flatnonzero((subsets == setting['query']) & keep)
        gallery = np.flatnonzero((subsets == setting['gallery']) & keep)
        for side, idx in (('query', query), ('gallery', gallery)):
            if len(idx) == 0:
                cams = ''
                if setting['cameras'] is not None:
                    cams = (f' with camid in {setting["cameras"]} (camids '
                            'found: '
                            f'{sorted(set(labels["camid"].tolist()))})')
                raise ValueError(
                    f'ReIDMetric setting {name!r}: no {side} items (subset '
                    f'{setting[side]!r}{cams}); subset values found: '
                    f'{found}')
        q_idx, g_idx = torch.from_numpy(query), torch.from_numpy(gallery)
        qf, gf = feats[q_idx], feats[g_idx]
        pid = labels['pid']
        cam = labels[setting['camera_key']]
        qp, gp, qc, gc = pid[q_idx], pid[g_idx], cam[q_idx], cam[g_idx]
        mode = setting['mode']
        if mode != 'general':
            qo, go = labels['clothes_id'][q_idx], labels['clothes_id'][g_idx]

        junk_fn = reid_label_junk_fn(
            mode, qc, gc, *((qo, go) if mode != 'general' else ()))

        if self.rerank is not None:
            # the features are already normalised (or taken as they are)
            dist = k_reciprocal_rerank(qf, gf, normalize=False, **self.rerank)
            ranks = rank_queries(
                scores=dist.neg_(),
                query_labels=qp,
                gallery_labels=gp,
                label_junk_fn=junk_fn,
                chunk_size=self.chunk_size)
            del dist
        else:
            ranks = rank_queries(
                qf,
                gf,
                qp,
                gp,
                label_junk_fn=junk_fn,
                chunk_size=self.chunk_size)
        try:
            summary = summarize(ranks, self.topk)
        except ValueError as err:
            raise ValueError(f'ReIDMetric setting {name!r} ({mode}): '
                             f'{err}') from None
        logger.info(
            f'ReID setting {name!r}: mode={mode}, query={setting["query"]!r}'
            f' ({len(query)}) vs gallery={setting["gallery"]!r} '
            f'({len(gallery)}), cameras='
            f'{"all" if setting["cameras"] is None else setting["cameras"]}'
            f', camera_key={setting["camera_key"]}, rerank='
            f'{self.rerank if self.rerank is not None else "off"}; '
            f'{summary["num_valid"]} valid queries, '
            f'{summary["num_invalid"]} without a positive skipped')
        out = {f'{name}/R@{k}': summary[f'R@{k}'] for k in self.topk}
        out[f'{name}/mAP'] = summary['mAP']
        out[f'{name}/mINP'] = summary['mINP']
        out[f'{name}/num_valid_queries'] = summary['num_valid']
        return out

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Evaluate every setting on the gathered records.

        Args:
            results (list[dict]): The records of all ranks, in dataset
                order, truncated to the dataset size by mmengine.

        Returns:
            dict: per setting ``'{name}/R@K'`` (each K), ``'{name}/mAP'``,
            ``'{name}/mINP'`` (percent) and ``'{name}/num_valid_queries'``.

        Raises:
            ValueError: no results, features of different sizes, a setting
                with an empty query or gallery side, or a setting where no
                query has a positive.
        """
        if not results:
            raise ValueError('ReIDMetric got no results: nothing was '
                             'evaluated')
        dims: Dict[int, int] = {}
        for record in results:
            d = record['img_feat'].numel()
            dims[d] = dims.get(d, 0) + 1
        if len(dims) > 1:
            raise ValueError(
                'ReIDMetric: img_feat has different sizes across items '
                f'(size: count) {dict(sorted(dims.items()))}; every item '
                'must be embedded by the same model head')
        feats = torch.stack([r['img_feat'] for r in results])
        if self.normalize:
            feats = F.normalize(feats, dim=1)
        labels = {
            key: torch.tensor([r[key] for r in results], dtype=torch.int64)
            for key in ['pid', *self._needs]
        }
        subsets = np.array([r['subset'] for r in results])
        metrics: Dict[str, float] = {}
        for setting in self.settings:
            metrics.update(self._setting(setting, feats, labels, subsets))
        return metrics
