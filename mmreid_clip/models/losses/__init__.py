"""Losses of mmreid_clip.

The label-smoothed cross-entropy of CLIP-ReID / CCAF (arXiv 2211.13977;
``docs/methods/ccaf.md`` §5: L_ID and L_I2T, CE_ls with
q = (1 - eps) onehot(y) + eps / N) is
mmpretrain's ``LabelSmoothLoss`` with ``mode='original'`` (its default) and
``reduction='mean'``; it is reachable from this scope as
``dict(type='LabelSmoothLoss', label_smooth_val=0.1, num_classes=N_id)``,
so no copy lives here (``tests/test_models/test_ccaf_losses.py`` checks the
equivalence). Pass ``num_classes``: left None, the instance latches the
class count of its first call, and ``label_smooth_val`` must be a float
(``0.`` not ``0``).
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
from .sdm_loss import SDMLoss
from .supcon_loss import SupConLoss
from .triplet_ranking_loss import TripletRankingLoss

__all__ = [
    'InfoNCELoss', 'SDMLoss', 'CMPMLoss', 'CMPCLoss', 'DiversityLoss',
    'TripletRankingLoss', 'SupConLoss', 'BatchHardTripletLoss',
    'CentroidAlignLoss', 'ClothesAdversarialLoss', 'ClothesOrthogonalLoss',
    'scaled_cosine_logits'
]
