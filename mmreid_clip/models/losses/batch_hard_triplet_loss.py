"""Batch-hard triplet loss of CLIP-ReID / CCAF stage 2 (arXiv
2211.13977; ``docs/methods/ccaf.md`` §5)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS

__all__ = ['BatchHardTripletLoss']


@MODELS.register_module()
class BatchHardTripletLoss(nn.Module):
    """Triplet loss with the hardest positive and negative of each anchor.

    With d the Euclidean distance between (by default unnormalised)
    features of the batch, for each anchor i::

        d_ap(i) = max_{j != i, y_j = y_i} d(i, j)
        d_an(i) = min_{j: y_j != y_i} d(i, j)
        L = mean_i max(0, margin + d_ap(i) - d_an(i))            margin set
        L = mean_i log(1 + exp(d_ap(i) - d_an(i)))               margin None

    CLIP-ReID (``docs/methods/ccaf.md`` §5) uses margin 0.3 on the pre-BN
    features f11, f12 and fp,
    summing the three losses (the caller sums).

    The anchor itself is not its own positive: with K >= 2 images per
    identity (a P x K batch) this changes nothing, since d(i, i) = 0 never
    exceeds another positive's distance. Anchors with no other sample of
    their identity, or no sample of another identity, have no triplet and
    are left out of the mean; a batch in which no anchor has a triplet
    raises ``ValueError`` (it points to a sampler misconfiguration).

    Args:
        margin (float, optional): Hinge margin; None selects the soft-margin
            (softplus) form. Defaults to 0.3.
        normalize (bool): L2-normalise the features before the distances.
            Defaults to False (CLIP-ReID).
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_triplet'.
    """

    def __init__(self,
                 margin: Optional[float] = 0.3,
                 normalize: bool = False,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_triplet') -> None:
        super().__init__()
        self._value_check = ValueCheck()
        if margin is not None and margin < 0:
            raise ValueError(f'margin must be >= 0 or None, got {margin}')
        self.margin = margin
        self.normalize = normalize
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    @staticmethod
    def pairwise_distance(x: torch.Tensor) -> torch.Tensor:
        """B x B Euclidean distances of the rows of ``x``."""
        sq = (x * x).sum(dim=1)
        d2 = sq.view(-1, 1) + sq.view(1, -1) - 2 * x @ x.t()
        # clamp: rounding can make d2 slightly negative, and sqrt(0) has an
        # infinite derivative.
        return d2.clamp(min=1e-12).sqrt()

    def forward(self, features: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            features (Tensor): B x D features.
            labels (Tensor): B identity labels.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if features.dim() != 2:
            raise ValueError('BatchHardTripletLoss expects B x D features, '
                             f'got {tuple(features.shape)}')
        labels = labels.view(-1)
        if labels.numel() != features.shape[0]:
            raise ValueError(f'BatchHardTripletLoss got {labels.numel()} '
                             f'labels for {features.shape[0]} features')
        x = features if features.dtype == torch.float64 else features.float()
        if self.normalize:
            x = F.normalize(x, dim=1)
        dist = self.pairwise_distance(x)
        same = labels.view(-1, 1) == labels.view(1, -1)
        eye = torch.eye(len(labels), dtype=torch.bool, device=same.device)
        is_pos = same & ~eye
        is_neg = ~same
        valid = is_pos.any(dim=1) & is_neg.any(dim=1)
        if self._value_check.due(valid) and not bool(valid.any()):
            raise ValueError(
                'BatchHardTripletLoss: no anchor has both a positive (another '
                'sample of its identity) and a negative in the batch; use an '
                'identity sampler with >= 2 identities and >= 2 images each')
        # -inf / +inf fill: masked entries never win the max / min.
        d_ap = dist.masked_fill(~is_pos, float('-inf')).max(dim=1).values
        d_an = dist.masked_fill(~is_neg, float('inf')).min(dim=1).values
        d_ap, d_an = d_ap[valid], d_an[valid]
        if self.margin is None:
            per_anchor = F.softplus(d_ap - d_an)
        else:
            per_anchor = (self.margin + d_ap - d_an).clamp(min=0)
        return self.loss_weight * per_anchor.mean()
