from .cmpc_loss import CMPCLoss
from .cmpm_loss import CMPMLoss
from .diversity_loss import DiversityLoss
from .infonce_loss import InfoNCELoss
from .sdm_loss import SDMLoss
from .triplet_ranking_loss import TripletRankingLoss

__all__ = [
    'InfoNCELoss', 'SDMLoss', 'CMPMLoss', 'CMPCLoss', 'DiversityLoss',
    'TripletRankingLoss'
]
