"""A small image backbone following the backbone contract of design.md."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class TinyConvEncoder(BaseModule):
    """Non-overlapping conv patches with a mean token in front.

    Args:
        embed_dims (int): Token width D. Defaults to 48.
        patch_size (int): Side of a patch. Defaults to 8.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 embed_dims: int = 48,
                 patch_size: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dim = embed_dims
        self.stem = nn.Conv2d(3, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """B x 3 x H x W -> ``global`` B x D, ``tokens`` B x (1+N) x D."""
        patches = self.stem(images).flatten(2).transpose(1, 2)
        tokens = torch.cat([patches.mean(1, keepdim=True), patches], dim=1)
        tokens = self.norm(tokens)
        # the global token comes first, as for CLIP's CLS token
        return {'global': tokens[:, 0], 'tokens': tokens}
