"""Clothes-orthogonality loss, CCAF's CFM variant B (arXiv
2406.09198; ``docs/methods/ccaf.md`` §8, config ``cfm.mode: proj``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS

__all__ = ['ClothesOrthogonalLoss']


@MODELS.register_module()
class ClothesOrthogonalLoss(nn.Module):
    """Push each image feature orthogonal to its own clothes prompt (§8).

    With fp_i the image feature, c_i its clothes id and u_k the clothes
    text features::

        L_CFM' = (1/B) sum_i cos(fp_i, sg[u_{c_i}])^2

    ``sg`` is the stop-gradient: only the image encoder is updated, the
    clothes prompts stay as the examiner left them. Unlike the adversarial
    variant (:class:`ClothesAdversarialLoss`) this needs no other clothes
    class and no ``pid2clothes``.

    Args:
        detach_prototypes (bool): Apply sg to the clothes features.
            Defaults to True (the formula of ccaf.md §8); False lets the
            gradient
            reach the clothes prompts too.
        loss_weight (float): lambda_CFM. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_cfm'.
    """

    def __init__(self,
                 detach_prototypes: bool = True,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cfm') -> None:
        super().__init__()
        self._value_check = ValueCheck()
        self.detach_prototypes = detach_prototypes
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def forward(self, features: torch.Tensor, clothes_prototypes: torch.Tensor,
                clothes_ids: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            features (Tensor): B x D image features (fp).
            clothes_prototypes (Tensor): N_clo x D clothes text features U,
                one row per training clothes id.
            clothes_ids (Tensor): B clothes labels c_i.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if features.dim() != 2 or clothes_prototypes.dim() != 2 or \
                features.shape[1] != clothes_prototypes.shape[1]:
            raise ValueError(
                'ClothesOrthogonalLoss expects B x D features and N_clo x D '
                f'clothes prototypes, got {tuple(features.shape)} and '
                f'{tuple(clothes_prototypes.shape)}')
        clothes_ids = clothes_ids.view(-1).long()
        n_clo = clothes_prototypes.shape[0]
        if clothes_ids.numel() != features.shape[0] or \
                clothes_ids.numel() == 0:
            raise ValueError(f'ClothesOrthogonalLoss got {clothes_ids.numel()}'
                             f' clothes_ids for {features.shape[0]} features')
        if self._value_check.due(clothes_ids) and (
                int(clothes_ids.min()) < 0
                or int(clothes_ids.max()) >= n_clo):
            raise ValueError('ClothesOrthogonalLoss: clothes_ids must be in '
                             f'[0, {n_clo}) (rows of clothes_prototypes), got '
                             f'{int(clothes_ids.min())}..'
                             f'{int(clothes_ids.max())}')
        u = clothes_prototypes
        if self.detach_prototypes:
            u = u.detach()
        x = features if features.dtype == torch.float64 else features.float()
        u = u[clothes_ids.to(u.device)].to(x.dtype)
        cos = F.cosine_similarity(x, u, dim=1)
        return self.loss_weight * cos.pow(2).mean()
