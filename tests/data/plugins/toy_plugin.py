"""A plugin that lives outside the package, loaded via custom_imports."""
import torch

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class ToyPluginLoss(torch.nn.Module):
    """Mean squared distance between paired image and text features."""

    loss_name = 'loss_toy_plugin'

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, img_feats, text_feats, pids):
        return self.loss_weight * (img_feats - text_feats).pow(2).mean()
