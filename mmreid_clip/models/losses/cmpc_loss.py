"""Cross-Modal Projection Classification loss of CFine (arXiv
2210.10276; ``docs/methods/cfine.md`` §7.2; CMPC of Zhang & Lu, ECCV 2018)."""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS
from .cmpm_loss import as_levels, check_level_weights

__all__ = ['CMPCLoss']


@MODELS.register_module()
class CMPCLoss(nn.Module):
    """CMPC loss with one identity classifier for all levels/modalities.

    Per level l, each feature is first projected onto the direction of its
    *paired* feature of the other modality, then classified into the C
    training identities by the column-normalised classifier W
    (cfine.md §7.2)::

        f~_v^i = (f_v^i . f_t_hat^i) f_t_hat^i
        f~_t^i = (f_t^i . f_v_hat^i) f_v_hat^i
        L_CMPC^l = CE(f~_v W_norm, y) + CE(f~_t W_norm, y)   (batch means)

    W (``cmpc_W``, D x C, xavier-uniform, no bias) is a Parameter of this
    module, so the optimizer trains it through the retriever; its name
    matches the ``'cmpc_W'`` key of the CFine optimizer config
    (``docs/methods/cfine.md`` §8). One W serves the L levels
    and both modalities. At initialisation the logits are ~0 and the loss is
    ~2 L ln C (6 ln 11003 = 55.8 on CUHK-PEDES, the official epoch-1 value).

    The returned loss is ``loss_weight * sum_l w_l L_CMPC^l``.

    Args:
        in_channels (int): Feature width D (768).
        num_classes (int): Training identities C (11003 CUHK-PEDES, 3102
            ICFG-PEDES, 3701 RSTPReid).
        level_weights (Sequence[float], optional): w_l for B x L x D input;
            None (default) weighs every level 1, as coded (cfine.md §7.2).
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Defaults to 'loss_cmpc'.

    Call ``loss(img_feats, text_feats, pids) -> Tensor`` with B x L x D (or
    B x D) paired features and B int64 labels in [0, C). :meth:`accuracy`
    gives the image / text top-1 training accuracies.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 level_weights: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cmpc') -> None:
        super().__init__()
        self._value_check = ValueCheck()
        if num_classes <= 0 or in_channels <= 0:
            raise ValueError('in_channels and num_classes must be > 0, got '
                             f'{in_channels}, {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.cmpc_W = nn.Parameter(torch.empty(in_channels, num_classes))
        nn.init.xavier_uniform_(self.cmpc_W)
        self.level_weights = (None if level_weights is None else tuple(
            float(w) for w in level_weights))
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    @staticmethod
    def chance_level(num_classes: int, num_levels: int = 3) -> float:
        """2 L ln C: the unweighted loss of uninformative logits."""
        return 2 * num_levels * math.log(num_classes)

    def logits(self, img_feats: torch.Tensor,
               text_feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """B x L x C image and text logits of the projected features."""
        v, t = as_levels(img_feats.float(), text_feats.float())
        v_hat, t_hat = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
        v_proj = (v * t_hat).sum(-1, keepdim=True) * t_hat
        t_proj = (t * v_hat).sum(-1, keepdim=True) * v_hat
        w_norm = F.normalize(self.cmpc_W, dim=0)  # unit columns
        return v_proj @ w_norm, t_proj @ w_norm

    def _check_labels(self, pids: torch.Tensor) -> None:
        if self._value_check.due(pids) and (pids.min() < 0 or pids.max()
                                            >= self.num_classes):
            raise ValueError(
                f'identity labels span [{int(pids.min())}, '
                f'{int(pids.max())}], outside [0, {self.num_classes}): '
                'num_classes must match the training split')

    def per_level(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                  pids: torch.Tensor) -> torch.Tensor:
        """Unweighted L_CMPC^l for every level: a tensor of L values."""
        self._check_labels(pids)
        terms = 0.
        for logits in self.logits(img_feats, text_feats):
            b, levels, c = logits.shape
            ce = F.cross_entropy(
                logits.reshape(b * levels, c),
                pids.repeat_interleave(levels),
                reduction='none')
            terms = terms + ce.view(b, levels).mean(0)
        return terms

    def forward(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                pids: torch.Tensor) -> torch.Tensor:
        terms = self.per_level(img_feats, text_feats, pids)
        weights = check_level_weights(self.level_weights, terms.numel(),
                                      img_feats)
        return self.loss_weight * (weights.to(terms) * terms).sum()

    @torch.no_grad()
    def accuracy(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                 pids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Top-1 identity accuracy of the image and text logits (all
        levels pooled), as the official training log reports."""
        img_logits, text_logits = self.logits(img_feats, text_feats)
        target = pids.view(-1, 1)
        return ((img_logits.argmax(-1) == target).float().mean(),
                (text_logits.argmax(-1) == target).float().mean())

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'num_classes={self.num_classes}')
