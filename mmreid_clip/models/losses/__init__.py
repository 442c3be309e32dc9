from .infonce_loss import InfoNCELoss
from .sdm_loss import SDMLoss

__all__ = ['InfoNCELoss', 'SDMLoss']
