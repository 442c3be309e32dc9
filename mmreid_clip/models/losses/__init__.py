"""Losses of mmreid_clip.

The label-smoothed cross-entropy of CLIP-ReID / CCAF (arXiv 2211.13977;
``docs/methods/ccaf.md`` §5: L_ID and L_I2T, CE_ls with
q = (1 - eps) onehot(y) + eps / N) is :class:`LabelSmoothCrossEntropyLoss`
(torch's ``cross_entropy`` with ``label_smoothing``), equal to mmpretrain's
``LabelSmoothLoss(mode='original')``, which stays reachable from this scope
but reads the labels back to the host on every call (see the class).
"""
from .batch_hard_triplet_loss import BatchHardTripletLoss
from .centroid_align_loss import CentroidAlignLoss
from .clothes_adversarial_loss import (ClothesAdversarialLoss,
                                       scaled_cosine_logits)
from .clothes_orthogonal_loss import ClothesOrthogonalLoss
from .cmpc_loss import CMPCLoss
from .cmpm_loss import CMPMLoss
from .diversity_loss import DiversityLoss
from .infonce_loss import InfoNCELoss
from .label_smooth_ce_loss import LabelSmoothCrossEntropyLoss
from .sdm_loss import SDMLoss
from .supcon_loss import SupConLoss
from .triplet_ranking_loss import TripletRankingLoss

__all__ = [
    'InfoNCELoss', 'SDMLoss', 'CMPMLoss', 'CMPCLoss', 'DiversityLoss',
    'TripletRankingLoss', 'SupConLoss', 'BatchHardTripletLoss',
    'CentroidAlignLoss', 'ClothesAdversarialLoss', 'ClothesOrthogonalLoss',
    'LabelSmoothCrossEntropyLoss', 'scaled_cosine_logits'
]
