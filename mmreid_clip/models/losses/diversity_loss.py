"""Diversity loss between CFine's enhanced global features (arXiv
2210.10276; ``docs/methods/cfine.md`` §7.3)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS

__all__ = ['DiversityLoss']


@MODELS.register_module()
class DiversityLoss(nn.Module):
    """Push the enhanced levels of one sample apart (cfine.md §7.3).

    For each sample and modality, with the G normalised enhanced features
    f_hat^1..f_hat^G (G = 2 in CFine: the MGF outputs of groups 1 and 2,
    after the BNNeck) and G_div their Gram matrix with the diagonal zeroed::

        L_div = mean_batch(||G_div||_F / G^2)
              = mean_batch(sqrt(2) |cos(f^1, f^2)| / 4)     for G = 2

    computed for images and for texts separately and summed. The returned
    value is ``loss_weight * (L_div^v + L_div^t)``; the default weight 0.2
    is CFine's lambda_div (cfine.md §7.5), so the retriever adds the output
    as is.

    Args:
        levels (Sequence[int], optional): Which levels of the B x L x D input
            are the enhanced ones. Defaults to (1, 2) (level 0 is the raw
            global feature, which the loss does not touch). None uses all.
        loss_weight (float): Defaults to 0.2.
        loss_name (str): Defaults to 'loss_div'.

    Call ``loss(img_feats, text_feats=None) -> Tensor`` with B x L x D level
    features (MGF ``'levels'``); either modality alone works.
    """

    def __init__(self,
                 levels: Optional[Sequence[int]] = (1, 2),
                 loss_weight: float = 0.2,
                 loss_name: str = 'loss_div') -> None:
        super().__init__()
        self.levels = None if levels is None else tuple(levels)
        if self.levels is not None and len(self.levels) < 2:
            raise ValueError('the diversity loss needs at least two levels, '
                             f'got {self.levels}')
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def single(self, feats: torch.Tensor) -> torch.Tensor:
        """Unweighted L_div of one modality's B x L x D features."""
        if feats.dim() != 3:
            raise ValueError(
                f'expected B x L x D features, got {tuple(feats.shape)}')
        if self.levels is not None:
            feats = feats[:, list(self.levels)]
        g = feats.shape[1]
        if g < 2:
            raise ValueError('the diversity loss needs at least two levels')
        f = F.normalize(feats.float(), dim=-1)
        gram = torch.einsum('bgd,bhd->bgh', f, f)
        off_diag = gram * (1 - torch.eye(g, device=f.device, dtype=f.dtype))
        return (off_diag.flatten(1).norm(dim=1) / g**2).mean()

    def forward(self,
                img_feats: torch.Tensor,
                text_feats: Optional[torch.Tensor] = None,
                pids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sum of the image and text terms; ``pids`` is unused (kept so
        every level loss is called as ``loss(img, text, pids)``)."""
        loss = self.single(img_feats)
        if text_feats is not None:
            loss = loss + self.single(text_feats)
        return self.loss_weight * loss
