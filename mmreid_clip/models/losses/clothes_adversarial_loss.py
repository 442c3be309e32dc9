"""Clothes-based adversarial loss of CCAF's CFM, encoder side (arXiv
2406.09198; ``docs/methods/ccaf.md`` §8 step B; CAL, Gu et al., CVPR 2022)."""
from typing import Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS

__all__ = ['ClothesAdversarialLoss', 'scaled_cosine_logits']


def scaled_cosine_logits(features: torch.Tensor,
                         prototypes: torch.Tensor,
                         scale: float = 16.0) -> torch.Tensor:
    """CFM clothes logits z_ik = s * cos(f_i, u_k) (ccaf.md §8).

    Args:
        features (Tensor): B x D image features (fp).
        prototypes (Tensor): N_clo x D clothes text features U.
        scale (float): s. Defaults to 16.0 (CAL).

    Returns:
        Tensor: B x N_clo logits. The caller chooses what is detached:
        ``features.detach()`` for the examiner's CE (step A), ``U.detach()``
        for :class:`ClothesAdversarialLoss` (step B).
    """
    if features.dim() != 2 or prototypes.dim() != 2 or \
            features.shape[1] != prototypes.shape[1]:
        raise ValueError('scaled_cosine_logits expects B x D features and '
                         f'N x D prototypes, got {tuple(features.shape)} and '
                         f'{tuple(prototypes.shape)}')
    dtype = torch.float64 if features.dtype == torch.float64 else \
        torch.float32
    f = F.normalize(features.to(dtype), dim=1)
    u = F.normalize(prototypes.to(dtype), dim=1)
    return scale * f @ u.t()


@MODELS.register_module()
class ClothesAdversarialLoss(nn.Module):
    """CAL-style multi-positive clothes loss (ccaf.md §8, step B).

    With z the B x N_clo clothes logits (already s * cos), c_i the clothes
    id and y_i the identity of sample i, and S(y) the clothes ids worn by
    identity y (row y of ``pid2clothes``)::

        L = -(1/B) sum_i sum_{k in S(y_i)} q_ik log( exp(z_ik)
                / (exp(z_ik) + sum_{j not in S(y_i)} exp(z_ij)) )
        q_ik = (1 - eps) 1[k = c_i] + eps / |S(y_i)| 1[k in S(y_i)]

    Every clothes class of the sample's own identity is scored only against
    other identities' clothes, so the encoder is never pushed to tell one
    person's outfits apart: the gradient on a same-identity logit z_ik
    (k != c_i) is -q_ik (1 - p_ik) <= 0, which raises it, where plain CE
    would lower it. With one clothes id per identity and eps = 0 the loss is
    plain cross-entropy over the clothes classes.

    Args:
        epsilon (float): eps, the mass spread over S(y_i). Defaults to 0.1
            (CAL).
        loss_weight (float): lambda_CFM. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_cfm'.

    Computing the logits is left to the caller (see
    :func:`scaled_cosine_logits`), because step A needs the same logits
    with the other side detached.
    """

    def __init__(self,
                 epsilon: float = 0.1,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cfm') -> None:
        super().__init__()
        self._value_check = ValueCheck()
        if not 0 <= epsilon <= 1:
            raise ValueError(f'epsilon must be in [0, 1], got {epsilon}')
        self.epsilon = epsilon
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def forward(self, logits: torch.Tensor, clothes_ids: torch.Tensor,
                pids: torch.Tensor,
                pid2clothes: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits (Tensor): B x N_clo clothes logits, already scaled.
            clothes_ids (Tensor): B clothes labels c_i.
            pids (Tensor): B identity labels y_i.
            pid2clothes (Tensor | ndarray): N_id x N_clo bool matrix, the
                train split's ``metainfo['pid2clothes']``.

        Returns:
            Tensor: The weighted scalar loss.
        """
        z = logits if logits.dtype == torch.float64 else logits.float()
        p2c = torch.as_tensor(pid2clothes, device=z.device).bool()
        clothes_ids = clothes_ids.view(-1).long().to(z.device)
        pids = pids.view(-1).long().to(z.device)
        self._check(z, clothes_ids, pids, p2c)

        own = p2c[pids]  # B x N_clo: S(y_i)
        rows = torch.arange(len(pids), device=z.device)
        # log of the sum over other identities' clothes; -inf when there are
        # none (a one-identity training set), which makes every term zero.
        neg_lse = z.masked_fill(own, float('-inf')).logsumexp(
            dim=1, keepdim=True)
        log_p = z - torch.logaddexp(z, neg_lse)
        own_f = own.to(z.dtype)
        q = self.epsilon * own_f / own_f.sum(dim=1, keepdim=True)
        q[rows, clothes_ids] += 1 - self.epsilon
        loss = -(q * log_p).sum(dim=1).mean()
        return self.loss_weight * loss

    def _check(self, z: torch.Tensor, clothes_ids: torch.Tensor,
               pids: torch.Tensor, p2c: torch.Tensor) -> None:
        name = 'ClothesAdversarialLoss'
        if z.dim() != 2:
            raise ValueError(f'{name} expects B x N_clo logits, got '
                             f'{tuple(z.shape)}')
        b, n_clo = z.shape
        if clothes_ids.numel() != b or pids.numel() != b:
            raise ValueError(f'{name}: {clothes_ids.numel()} clothes_ids and '
                             f'{pids.numel()} pids for {b} logit rows')
        if p2c.dim() != 2 or p2c.shape[1] != n_clo:
            raise ValueError(f'{name}: pid2clothes must be N_id x {n_clo} '
                             f'(one column per logit), got {tuple(p2c.shape)}')
        if b == 0:
            raise ValueError(f'{name}: empty batch')
        if not self._value_check.due(pids):
            return
        if int(pids.min()) < 0 or int(pids.max()) >= p2c.shape[0]:
            raise ValueError(f'{name}: pids must be in [0, {p2c.shape[0]}) '
                             '(rows of pid2clothes), got '
                             f'{int(pids.min())}..{int(pids.max())}')
        if int(clothes_ids.min()) < 0 or int(clothes_ids.max()) >= n_clo:
            raise ValueError(f'{name}: clothes_ids must be in [0, {n_clo}), '
                             f'got {int(clothes_ids.min())}..'
                             f'{int(clothes_ids.max())}')
        worn = p2c[pids, clothes_ids]
        if not bool(worn.all()):
            i = int((~worn).nonzero()[0])
            raise ValueError(
                f'{name}: sample {i} has clothes_id {int(clothes_ids[i])}, '
                f'but pid2clothes[{int(pids[i])}, {int(clothes_ids[i])}] is '
                'False (clothes id not worn by that identity)')
