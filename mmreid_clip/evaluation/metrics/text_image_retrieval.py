"""Text-to-image (and image-to-text) person retrieval metric."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmreid_clip.evaluation.functional import rank_queries, summarize
from mmreid_clip.registry import METRICS


def _as_int(value) -> int:
    return int(value.item() if torch.is_tensor(value) else value)


@METRICS.register_module()
class TextImageRetrievalMetric(BaseMetric):
    """R@K, mAP and mINP of text-based person retrieval.

    The standard TIPR protocol (``datasets-and-protocols.md`` §1.1, §5.1):
    every caption is a query; the gallery holds every test image once; a
    gallery image is a positive when it shows the query's identity; nothing
    is junk. Similarity is the dot product of the L2-normalised features the
    model attaches (``img_feat``, ``text_feat``; ``docs/design.md``). Ties
    keep gallery order (see :mod:`mmreid_clip.evaluation.functional.ranking`).

    Items repeated by a distributed sampler's padding are dropped by
    ``image_id`` / ``caption_id``.

    Args:
        topk (Sequence[int]): Ks of R@K. Defaults to (1, 5, 10).
        i2t (bool): Also report image-to-text retrieval (images as queries,
            captions as the gallery). Defaults to False.
        chunk_size (int, optional): Queries per chunk; auto by default.
        normalize (bool): L2-normalise features again before ranking.
            Defaults to True (cheap, and safe for models that do not).
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric keys, e.g. 't2i/R@1'
            becomes 'prefix/t2i/R@1'. Defaults to None.
    """
    default_prefix = None

    def __init__(self,
                 topk: Sequence[int] = (1, 5, 10),
                 i2t: bool = False,
                 chunk_size: Optional[int] = None,
                 normalize: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not topk or min(topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')
        self.topk = tuple(topk)
        self.i2t = i2t
        self.chunk_size = chunk_size
        self.normalize = normalize

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each item's features (on CPU) with its identity and ids."""
        for sample in data_samples:
            item = dict(
                pid=_as_int(sample['pid']),
                image_id=_as_int(sample.get('image_id', -1)),
                caption_id=_as_int(sample.get('caption_id', -1)))
            for key in ('img_feat', 'text_feat'):
                if key in sample:
                    item[key] = sample[key].detach().float().cpu()
            self.results.append(item)

    @staticmethod
    def _collect(results: List[dict], feat_key: str,
                 id_key: str) -> Tuple[torch.Tensor, torch.Tensor, list]:
        """Unique items with ``feat_key``, by ``id_key`` (first kept)."""
        seen: Dict[int, int] = {}
        feats, pids = [], []
        for item in results:
            if feat_key not in item:
                continue
            uid = item[id_key]
            if uid in seen:
                if seen[uid] != item['pid']:
                    raise ValueError(
                        f'{id_key} {uid} appears with identities '
                        f'{seen[uid]} and {item["pid"]}: the dataset ids '
                        'are inconsistent')
                continue
            seen[uid] = item['pid']
            feats.append(item[feat_key])
            pids.append(item['pid'])
        if not feats:
            return torch.empty(0), torch.empty(0, dtype=torch.long), []
        return torch.stack(feats), torch.tensor(pids), list(seen)

    def _score(self, q_feats, q_pids, g_feats, g_pids) -> Dict[str, float]:
        ranks = rank_queries(
            q_feats,
            g_feats,
            q_pids,
            g_pids,
            chunk_size=self.chunk_size,
            normalize=self.normalize)
        return summarize(ranks, self.topk)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Rank the gallery for every caption (and vice versa)."""
        logger = MMLogger.get_current_instance()
        g_feats, g_pids, _ = self._collect(results, 'img_feat', 'image_id')
        q_feats, q_pids, _ = self._collect(results, 'text_feat',
                                           'caption_id')
        if not len(g_pids) or not len(q_pids):
            missing = 'gallery images' if not len(g_pids) else 'captions'
            raise ValueError(
                f'TextImageRetrievalMetric got no {missing}: evaluate on a '
                'val/test split, whose items are every image once and every '
                'caption once (a train split holds pairs)')
        if g_feats.size(1) != q_feats.size(1):
            raise ValueError(f'image features are {g_feats.size(1)}-d, text '
                             f'features {q_feats.size(1)}-d')
        t2i = self._score(q_feats, q_pids, g_feats, g_pids)
        logger.info(f'text-to-image: {len(q_pids)} caption queries x '
                    f'{len(g_pids)} gallery images '
                    f'({t2i["num_invalid"]} queries without a match)')
        metrics = {
            f't2i/{k}': v
            for k, v in t2i.items() if not k.startswith('num_')
        }
        if self.i2t:
            i2t = self._score(g_feats, g_pids, q_feats, q_pids)
            metrics.update({
                f'i2t/{k}': v
                for k, v in i2t.items() if not k.startswith('num_')
            })
        return metrics
