"""A neck for the ``neck`` slot of CFine: two levels per modality."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class MeanPoolNeck(BaseModule):
    """Levels = [global token, projected mean of the real tokens].

    Implements the interface CFine calls on its neck (see
    ``mmreid_clip/models/necks/mgf.py``): ``forward_image``,
    ``forward_text`` (each returning ``{'levels': B x L x W}``) and
    ``inference_feature``. It selects no tokens (``num_groups = 0``), so
    CFine's CFR and FCD modules cannot be used with it.

    Args:
        embed_dims (int): Token width W of both encoders.
        init_cfg (dict, optional): mmengine init config.
    """

    num_groups = 0

    def __init__(self, embed_dims: int, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def _levels(
        self,
        tokens: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        global_index: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        index = 0 if global_index is None else global_index
        global_feat = tokens[rows, index]
        if mask is None:
            mean = tokens.mean(dim=1)
        else:  # padding must not dilute the mean of a short caption
            weight = mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * weight).sum(1) / weight.sum(1).clamp(min=1)
        return {'levels': torch.stack([global_feat, self.proj(mean)], dim=1)}

    def forward_image(self,
                      tokens: torch.Tensor,
                      attn: Optional[torch.Tensor] = None) -> dict:
        return self._levels(tokens)

    def forward_text(self,
                     tokens: torch.Tensor,
                     attn: Optional[torch.Tensor] = None,
                     mask: Optional[torch.Tensor] = None,
                     global_index: Optional[torch.Tensor] = None) -> dict:
        return self._levels(tokens, mask, global_index)

    @staticmethod
    def inference_feature(levels: torch.Tensor) -> torch.Tensor:
        """B x L x W levels -> B x (L*W) unit-norm retrieval feature."""
        return F.normalize(levels.flatten(1), dim=-1)
