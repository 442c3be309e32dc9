"""Identity classification head shared by both modalities."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS


@MODELS.register_module()
class SharedIDHead(BaseModule):
    """One linear identity classifier applied to image and text features.

    The ID loss of IRRA (Sec. 3.4) and of CMPC-style objectives: both
    modalities are classified into the C training identities by the same
    weights, which pulls the two embedding spaces together;
    L_id = (CE(W v, y) + CE(W t, y)) / 2.

    Args:
        in_channels (int): Feature dimension D.
        num_classes (int): Number of training identities C.
        label_smoothing (float): Defaults to 0.0.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Defaults to 'loss_id'.
        init_cfg (dict, optional): Defaults to a N(0, 0.001) linear init,
            as BNNeck classifiers use.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 label_smoothing: float = 0.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_id',
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.001, bias=0.)):
        super().__init__(init_cfg=init_cfg)
        self._value_check = ValueCheck()
        if num_classes <= 0:
            raise ValueError(f'num_classes must be > 0, got {num_classes}')
        self.num_classes = num_classes
        self.fc = nn.Linear(in_channels, num_classes)
        self.label_smoothing = label_smoothing
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(feats)

    def loss(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
             pids: torch.Tensor) -> torch.Tensor:
        """Mean of the image and text cross-entropies."""
        if self._value_check.due(pids) and (pids.max() >= self.num_classes
                                            or pids.min() < 0):
            raise ValueError(
                f'identity label {int(pids.max())} outside [0, '
                f'{self.num_classes}): num_classes of the ID head must '
                'match the training split')
        ce = 0.
        for feats in (img_feats, text_feats):
            ce = ce + F.cross_entropy(
                self(feats.float()), pids,
                label_smoothing=self.label_smoothing)
        return self.loss_weight * ce / 2
