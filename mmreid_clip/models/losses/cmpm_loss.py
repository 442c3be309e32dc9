"""Cross-Modal Projection Matching loss of CFine (arXiv 2210.10276;
``docs/methods/cfine.md`` §7.1; CMPM of Zhang & Lu, ECCV 2018, with CFine's
L2 label normalisation).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS

__all__ = ['CMPMLoss', 'as_levels', 'check_level_weights']


def as_levels(img_feats: torch.Tensor,
              text_feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """View B x D features as one level (B x 1 x D); check B x L x D pairs.
    """
    if img_feats.shape != text_feats.shape:
        raise ValueError('image and text features must have the same shape, '
                         f'got {tuple(img_feats.shape)} and '
                         f'{tuple(text_feats.shape)}')
    if img_feats.dim() == 2:
        return img_feats.unsqueeze(1), text_feats.unsqueeze(1)
    if img_feats.dim() != 3:
        raise ValueError('expected B x D or B x L x D features, got '
                         f'{tuple(img_feats.shape)}')
    return img_feats, text_feats


def check_level_weights(level_weights: Optional[Sequence[float]],
                        num_levels: int, feats: torch.Tensor) -> torch.Tensor:
    """Level weights as a tensor: all ones when None or for B x D input."""
    if level_weights is None or (num_levels == 1 and feats.dim() == 2):
        return feats.new_ones(num_levels)
    if len(level_weights) != num_levels:
        raise ValueError(f'{len(level_weights)} level weights for '
                         f'{num_levels} feature levels')
    return feats.new_tensor(list(level_weights))


@MODELS.register_module()
class CMPMLoss(nn.Module):
    """CMPM loss summed over the feature levels with level weights
    (cfine.md §7.1).

    Per level l, with f_v, f_t the B x D image / text features of the pairs
    and Y_ij = [y_i == y_j]::

        p_ij = softmax_j(f_v^i . f_t_hat^j)       (no temperature; the image
                                                   side stays un-normalised)
        Q_ij = Y_ij / ||Y_j,:||_2                 (L2, as coded; 'l1' gives
                                                   the original CMPM's
                                                   Y_ij / sum_k Y_jk)
        L^{v->t} = 1/B sum_i sum_j p_ij (log p_ij - log(Q_ij + eps))

    L^{t->v} swaps the roles, and L_CMPM^l = L^{v->t} + L^{t->v}. The loss
    returned is ``loss_weight * sum_l w_l L_CMPM^l`` with
    w = ``level_weights``: the level weights live here, so the retriever
    passes all levels in one call.

    Args:
        level_weights (Sequence[float], optional): w_l for B x L x D input;
            length must equal L. Defaults to (1, 1, 0.1), CFine's weights
            for (global, group 1, group 2) (cfine.md §7.1). None gives all
            ones. Ignored (weight 1) for B x D input.
        label_norm (str): 'l2' (the official code, cfine.md §7.1) or 'l1'.
            Defaults to 'l2'.
        eps (float): Keeps log(Q) finite where Q = 0. Defaults to 1e-8.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Defaults to 'loss_cmpm'.

    Call ``loss(img_feats, text_feats, pids) -> Tensor`` with B x L x D (or
    B x D) BN-necked features (MGF ``'levels'``) and B int64 identities;
    returns the scalar loss. :meth:`per_level` gives the L unweighted terms.
    """

    def __init__(self,
                 level_weights: Optional[Sequence[float]] = (1.0, 1.0, 0.1),
                 label_norm: str = 'l2',
                 eps: float = 1e-8,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cmpm') -> None:
        super().__init__()
        if label_norm not in ('l1', 'l2'):
            raise ValueError(f"label_norm must be 'l1' or 'l2', got "
                             f'{label_norm!r}')
        self.level_weights = (None if level_weights is None else tuple(
            float(w) for w in level_weights))
        self.label_norm = label_norm
        self.eps = eps
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def label_distribution(self, pids: torch.Tensor) -> torch.Tensor:
        """B x B true matching distribution Q."""
        y = (pids.view(-1, 1) == pids.view(1, -1)).float()
        # Y is symmetric, so ||Y_j,:|| is also the norm of column j;
        # dividing column-wise reproduces the official broadcast.
        norm = (y.norm(dim=1) if self.label_norm == 'l2' else y.sum(dim=1))
        return y / norm.view(1, -1)

    def _direction(self, anchors: torch.Tensor, others: torch.Tensor,
                   log_q: torch.Tensor) -> torch.Tensor:
        # anchors / others: L x B x D; result: L terms
        logits = torch.einsum('lid,ljd->lij', anchors,
                              F.normalize(others, dim=-1))
        log_p = logits.log_softmax(dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum(-1).mean(-1)

    def per_level(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                  pids: torch.Tensor) -> torch.Tensor:
        """Unweighted L_CMPM^l for every level: a tensor of L values."""
        v, t = as_levels(img_feats.float(), text_feats.float())
        v, t = v.transpose(0, 1), t.transpose(0, 1)  # L x B x D
        log_q = torch.log(self.label_distribution(pids) + self.eps)
        return self._direction(v, t, log_q) + self._direction(t, v, log_q)

    def forward(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                pids: torch.Tensor) -> torch.Tensor:
        terms = self.per_level(img_feats, text_feats, pids)
        weights = check_level_weights(self.level_weights, terms.numel(),
                                      img_feats)
        return self.loss_weight * (weights.to(terms) * terms).sum()
