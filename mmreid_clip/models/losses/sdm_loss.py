"""Similarity Distribution Matching (IRRA, Jiang & Ye, CVPR 2023, Eq. 3-5)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS


@MODELS.register_module()
class SDMLoss(nn.Module):
    """KL divergence between predicted and true cross-modal matching.

    With L2-normalised image features v and text features t of a batch,
    the image-to-text matching distribution of image i is

        p_ij = softmax_j(s * cos(v_i, t_j))

    and the true distribution spreads mass evenly over the captions of the
    same identity, q_ij = y_ij / sum_k y_ik with y_ij = [pid_i == pid_j].
    The loss is KL(p_i || q_i) = sum_j p_ij (log p_ij - log(q_ij + eps)),
    averaged over i, plus the same text-to-image term (IRRA Eq. 3-5).

    Args:
        temperature (float): tau; the logit scale is s = 1/tau. IRRA uses
            0.02. Defaults to 0.02.
        eps (float): Keeps log(q) finite where q = 0. Defaults to 1e-8.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_sdm'.
    """

    def __init__(self,
                 temperature: float = 0.02,
                 eps: float = 1e-8,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_sdm') -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.scale = 1.0 / temperature
        self.eps = eps
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def _kl(self, logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        kl = log_p.exp() * (log_p - torch.log(q + self.eps))
        return kl.sum(dim=1).mean()

    def forward(self, img_feats: torch.Tensor, text_feats: torch.Tensor,
                pids: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            img_feats (Tensor): B x D image features (normalised here).
            text_feats (Tensor): B x D text features of the same pairs.
            pids (Tensor): B identity labels.

        Returns:
            Tensor: The weighted scalar loss.
        """
        v = F.normalize(img_feats.float(), dim=-1)
        t = F.normalize(text_feats.float(), dim=-1)
        logits = self.scale * v @ t.t()  # rows: images, columns: captions
        y = (pids.view(-1, 1) == pids.view(1, -1)).float()
        q = y / y.sum(dim=1, keepdim=True)  # y is symmetric, so q is too
        loss = self._kl(logits, q) + self._kl(logits.t(), q)
        return self.loss_weight * loss
