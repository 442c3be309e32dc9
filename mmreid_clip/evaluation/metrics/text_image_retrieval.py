"""Text-to-image (and image-to-text) person retrieval metric."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmreid_clip.evaluation.functional import rank_queries, summarize
from mmreid_clip.registry import METRICS
from .args import as_int, check_ranking_args


@METRICS.register_module()
class TextImageRetrievalMetric(BaseMetric):
    """R@K, mAP and mINP of text-based person retrieval (TIPR).

    The standard protocol (``docs/methods/datasets.md`` §1, §5.1): every
    caption is a query; the gallery holds every image once; a gallery image
    is a positive of a caption when it shows the same identity (``pid``);
    there is no junk. For query q with positives at ranks ``r_1 < ... <
    r_m``:

        R@K = mean_q 1[r_1 <= K],   mAP = mean_q (1/m) sum_i i / r_i,
        mINP = mean_q m / r_m,

    reported in percent. Queries whose identity has no image are left out
    of the means and counted in the log. Scores are the dot products of the
    features the model attaches (``img_feat``, ``text_feat``, see
    ``docs/design.md``), L2-normalised again when ``normalize`` (cosine).

    The ranking is exact and deterministic: equal scores are ordered by
    ascending ``image_id`` (the gallery is sorted by it), so neither the
    device, the number of processes nor the sampler order can move a tied
    R@1. The computation is chunked (:func:`~mmreid_clip.evaluation.
    functional.rank_queries`): no ``Q x G`` array is built, the peak stays in
    the chunk budget (~256 MiB by default) even at ICFG-PEDES size.

    Collection: :meth:`process` keeps one record per data sample (features
    on the CPU in float32, ``pid``, ``image_id``, ``caption_id``); mmengine
    gathers them from all ranks. A sampler that pads the last batch repeats
    items, so :meth:`compute_metrics` de-duplicates the images by
    ``image_id`` and the captions by ``caption_id`` (keeping the first)
    instead of trusting counts.

    Args:
        topk (Sequence[int]): The K of the R@K entries. Defaults to
            (1, 5, 10).
        i2t (bool): Also report image-to-text retrieval: the images are the
            queries, the captions the gallery, and the positives of an image
            are the captions of its identity. Defaults to False.
        chunk_size (int, optional): Queries per chunk; None picks it from a
            256 MiB budget.
        normalize (bool): L2-normalise the features before ranking. The
            models already do; doing it again is cheap and makes the score
            the cosine similarity whatever the model returns. Defaults to
            True.
        collect_device (str): Device used to gather results across ranks,
            'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Namespace put before the keys, e.g.
            ``'cuhk'`` gives ``'cuhk/t2i/R@1'``. By default the keys are
            ``'t2i/R@1'``, ``'t2i/R@5'``, ``'t2i/R@10'``, ``'t2i/mAP'``,
            ``'t2i/mINP'`` (and ``'i2t/...'``), already namespaced by the
            retrieval direction.
        collect_dir (str, optional): Folder used to gather results when
            ``collect_device='cpu'``. Defaults to a temporary one.
    """
    # '' rather than None: BaseMetric warns when the prefix is None, and an
    # empty prefix adds nothing to the keys (the direction names them).
    default_prefix: Optional[str] = ''

    def __init__(self,
                 topk: Sequence[int] = (1, 5, 10),
                 i2t: bool = False,
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
        self.i2t = i2t
        self.chunk_size = chunk_size
        self.normalize = normalize

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each item's features (CPU, float32) with its ids.

        Exactly one record per data sample, also for a sample without
        features, so that mmengine's gathering, which interleaves the ranks'
        records and cuts the padding by count, stays aligned.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): The model's outputs as dicts
                (mmengine's Evaluator converts DataSample to dict;
                DataSample objects are accepted too), with ``pid`` (or
                ``gt_label``), ``image_id``, ``caption_id`` and at least one
                of ``img_feat``/``text_feat`` (``D`` tensors).
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pid = sample.get('pid')
            if pid is None:
                pid = sample.get('gt_label')
            if pid is None:
                raise KeyError('TextImageRetrievalMetric needs the identity '
                               '`pid` (or `gt_label`) of every data sample')
            record = dict(
                pid=as_int(pid, 'pid'),
                image_id=sample.get('image_id'),
                caption_id=sample.get('caption_id'))
            for key in ('image_id', 'caption_id'):
                if record[key] is not None:
                    record[key] = as_int(record[key], key)
            for key in ('img_feat', 'text_feat'):
                feat = sample.get(key)
                if feat is not None:
                    # copy: the feature is usually a row view of the batch
                    # output, and pickling a view (mmengine gathers results
                    # by pickle) writes its whole storage, i.e. the batch
                    record[key] = torch.as_tensor(feat).detach().to(
                        device='cpu', dtype=torch.float32,
                        copy=True).reshape(-1)
            self.results.append(record)

    @staticmethod
    def _unique(results: List[dict], feat_key: str,
                id_key: str) -> Tuple[Tensor, Tensor, int]:
        """The items with ``feat_key``, once per ``id_key``, sorted by it.

        Args:
            results (list[dict]): Records from :meth:`process`.
            feat_key (str): ``'img_feat'`` or ``'text_feat'``.
            id_key (str): ``'image_id'`` or ``'caption_id'``.

        Returns:
            tuple: features ``N x D``, pids ``(N,)`` and the number of
            duplicate records dropped.

        Raises:
            ValueError: an item without a valid id, an id seen with two
                identities, or features of different sizes.
        """
        first: Dict[int, dict] = {}
        duplicates = 0
        for record in results:
            if feat_key not in record:
                continue
            uid = record.get(id_key)
            if uid is None or uid < 0:
                raise ValueError(
                    f'an item with {feat_key} has {id_key}={uid}: '
                    f'TextImageRetrievalMetric de-duplicates by {id_key}, '
                    'which the dataset must set (>= 0) on these items')
            seen = first.get(uid)
            if seen is None:
                first[uid] = record
                continue
            duplicates += 1
            if seen['pid'] != record['pid']:
                raise ValueError(f'{id_key} {uid} appears with identities '
                                 f'{seen["pid"]} and {record["pid"]}: the '
                                 'dataset ids are inconsistent')
        if not first:
            return torch.empty(0, 0), torch.empty(0, dtype=torch.long), 0
        ids = sorted(first)
        dims = {first[i][feat_key].numel() for i in ids}
        if len(dims) > 1:
            raise ValueError(f'{feat_key} has different sizes across items: '
                             f'{sorted(dims)}')
        feats = torch.stack([first[i][feat_key] for i in ids])
        pids = torch.tensor([first[i]['pid'] for i in ids], dtype=torch.long)
        return feats, pids, duplicates

    def _direction(self, name: str, nouns: Tuple[str,
                                                 str], query_feats: Tensor,
                   query_pids: Tensor, gallery_feats: Tensor,
                   gallery_pids: Tensor) -> Dict[str, float]:
        """R@K, mAP and mINP (percent) of one retrieval direction.

        Args:
            name (str): Key namespace, ``'t2i'`` or ``'i2t'``.
            nouns (tuple[str, str]): What the queries and the gallery items
                are, for the log.
            query_feats, query_pids, gallery_feats, gallery_pids (Tensor):
                ``Q x D``, ``(Q,)``, ``G x D``, ``(G,)``.
        """
        ranks = rank_queries(
            query_feats,
            gallery_feats,
            query_pids,
            gallery_pids,
            chunk_size=self.chunk_size,
            normalize=self.normalize)
        try:
            summary = summarize(ranks, self.topk)
        except ValueError as err:
            raise ValueError(f'{name}: {err}') from None
        MMLogger.get_current_instance().info(
            f'{name}: {len(query_pids)} {nouns[0]} x {len(gallery_pids)} '
            f'{nouns[1]}; {summary["num_invalid"]} queries without a '
            'positive skipped')
        return {
            f'{name}/{key}': value
            for key, value in summary.items() if not key.startswith('num_')
        }

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Rank the image gallery for every caption (and vice versa).

        Args:
            results (list[dict]): The records of all ranks.

        Returns:
            dict: ``'t2i/R@K'`` for each K, ``'t2i/mAP'``, ``'t2i/mINP'``
            (and the same with ``'i2t/'``), in percent.

        Raises:
            ValueError: no image or no caption was evaluated, the image and
                text features differ in size, the ids are inconsistent, or
                no query has a positive (no metric is defined then).
        """
        logger = MMLogger.get_current_instance()
        img_feats, img_pids, img_dups = self._unique(results, 'img_feat',
                                                     'image_id')
        txt_feats, txt_pids, txt_dups = self._unique(results, 'text_feat',
                                                     'caption_id')
        for count, what, key in ((len(img_pids), 'gallery images', 'img_feat'),
                                 (len(txt_pids), 'caption queries',
                                  'text_feat')):
            if count == 0:
                raise ValueError(
                    f'TextImageRetrievalMetric has no {what}: none of the '
                    f'{len(results)} evaluated items has `{key}`. Evaluate '
                    'on a val/test split (every image once, then every '
                    'caption once) and check that the model attaches '
                    f'`{key}` in predict mode')
        if img_feats.size(1) != txt_feats.size(1):
            raise ValueError(
                f'img_feat is {img_feats.size(1)}-d but text_feat is '
                f'{txt_feats.size(1)}-d: the two towers must embed into the '
                'same space (check the projections)')
        if img_dups or txt_dups:
            logger.info(f'dropped {img_dups} repeated images and {txt_dups} '
                        'repeated captions (sampler padding)')
        metrics = self._direction('t2i', ('caption queries', 'images'),
                                  txt_feats, txt_pids, img_feats, img_pids)
        if self.i2t:
            metrics.update(
                self._direction('i2t', ('image queries', 'captions'),
                                img_feats, img_pids, txt_feats, txt_pids))
        return metrics
