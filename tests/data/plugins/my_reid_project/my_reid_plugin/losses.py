"""An identity-aware contrastive loss on CFine-style feature levels."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class LevelInfoNCELoss(nn.Module):
    """Symmetric InfoNCE on every level; same-identity pairs are positives.

    Called by CFine as ``loss(img_levels, text_levels, pids)`` with
    B x L x W levels of B (image, caption) pairs and B identity labels.

    Args:
        temperature (float): Softmax temperature. Defaults to 0.07.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    loss_name = 'loss_level_nce'

    def __init__(self,
                 temperature: float = 0.07,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, img_levels: torch.Tensor, text_levels: torch.Tensor,
                pids: torch.Tensor) -> torch.Tensor:
        img = F.normalize(img_levels, dim=-1)
        txt = F.normalize(text_levels, dim=-1)
        logits = torch.einsum('ilw,jlw->lij', img, txt) / self.temperature
        match = (pids[:, None] == pids[None, :]).to(logits.dtype)
        target = match / match.sum(dim=1, keepdim=True)
        loss = sum(
            F.cross_entropy(level, target) +
            F.cross_entropy(level.t(), target)
            for level in logits) / (2 * logits.shape[0])
        return self.loss_weight * loss
