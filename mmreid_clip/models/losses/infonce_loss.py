"""Symmetric InfoNCE with a learnable temperature (CLIP, Radford et al.)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """CLIP's symmetric contrastive loss over the pairs of a batch.

    L = (CE(s * V T^T, I) + CE(s * T V^T, I)) / 2 on L2-normalised V, T,
    with s = exp(log_scale) learnable and clamped at ``max_scale`` (CLIP
    clamps at 100 to keep training stable). Only the diagonal counts as a
    positive; pairs of the same identity elsewhere in the batch are
    negatives (use :class:`SDMLoss` to treat them as positives).

    Args:
        init_temperature (float): Initial tau = 1/s. Defaults to 0.07.
        learnable (bool): Learn the temperature. Defaults to True.
        max_scale (float): Upper clamp of s. Defaults to 100.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_infonce'.
    """

    def __init__(self,
                 init_temperature: float = 0.07,
                 learnable: bool = True,
                 max_scale: float = 100.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_infonce') -> None:
        super().__init__()
        log_scale = torch.tensor(math.log(1.0 / init_temperature))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer('log_scale', log_scale)
        self.max_log_scale = math.log(max_scale)
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                pids: torch.Tensor) -> torch.Tensor:
        """Compute the loss; ``pids`` is unused (kept for a common API)."""
        v = F.normalize(img_feats.float(), dim=-1)
        t = F.normalize(text_feats.float(), dim=-1)
        logits = self.scale * v @ t.t()
        target = torch.arange(logits.size(0), device=logits.device)
        loss = (F.cross_entropy(logits, target) +
                F.cross_entropy(logits.t(), target)) / 2
        return self.loss_weight * loss
