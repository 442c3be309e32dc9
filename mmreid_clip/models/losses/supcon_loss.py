"""Supervised contrastive loss of CLIP-ReID stage 1 (arXiv
2211.13977; ``docs/methods/ccaf.md`` §4)."""
import torch
import torch.nn as nn

from mmreid_clip.models.utils.value_checks import ValueCheck
from mmreid_clip.registry import MODELS

__all__ = ['SupConLoss']


@MODELS.register_module()
class SupConLoss(nn.Module):
    """Supervised contrastive loss between two feature sets (ccaf.md §4).

    With anchors a_i (labels la_i), candidates b_j (labels lb_j) and the
    positive set P_i = {j : lb_j = la_i}::

        SupCon(A, B, la, lb) = -(1/|A|) sum_i (1/|P_i|) sum_{j in P_i}
                               log( exp(a_i . b_j / tau)
                                    / sum_j' exp(a_i . b_j' / tau) )

    Features are used as they are (no L2 normalisation) and tau = 1, as in
    CLIP-ReID; the row maximum is subtracted before the exponential. The
    stage-1 objective is ``loss(v, t, y, y) + loss(t, v, y, y)`` (i2t +
    t2i), for the identity prompts and for the clothes prompts.

    Args:
        temperature (float): tau. Defaults to 1.0.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_supcon'.

    Every anchor needs at least one positive among the candidates; in
    stage 1 the candidates are the text features of the batch's own labels,
    so this always holds. An anchor without one raises ``ValueError``
    (CLIP-ReID would silently return NaN).
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_supcon') -> None:
        super().__init__()
        self._value_check = ValueCheck()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def forward(self, features_a: torch.Tensor, features_b: torch.Tensor,
                labels_a: torch.Tensor,
                labels_b: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            features_a (Tensor): A x D anchors (rows of the logits).
            features_b (Tensor): B x D candidates (softmax runs over them).
            labels_a (Tensor): A labels of the anchors.
            labels_b (Tensor): B labels of the candidates.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if features_a.dim() != 2 or features_b.dim() != 2 or \
                features_a.shape[1] != features_b.shape[1]:
            raise ValueError('SupConLoss expects A x D and B x D features, '
                             f'got {tuple(features_a.shape)} and '
                             f'{tuple(features_b.shape)}')
        labels_a, labels_b = labels_a.view(-1), labels_b.view(-1)
        if labels_a.numel() != features_a.shape[0] or \
                labels_b.numel() != features_b.shape[0]:
            raise ValueError(
                f'SupConLoss got {labels_a.numel()} / {labels_b.numel()} '
                f'labels for {features_a.shape[0]} / {features_b.shape[0]} '
                'features')
        a = _upcast(features_a)
        b = _upcast(features_b).to(a.dtype)
        logits = a @ b.t() / self.temperature
        # The max shift cancels in the softmax; detaching it keeps the
        # gradient identical to the unshifted formula.
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_prob = logits - logits.logsumexp(dim=1, keepdim=True)
        pos = (labels_a.view(-1, 1) == labels_b.view(1, -1)).to(a.dtype)
        num_pos = pos.sum(dim=1)
        if self._value_check.due(num_pos) and bool((num_pos == 0).any()):
            row = int((num_pos == 0).nonzero()[0])
            raise ValueError(
                f'SupConLoss: anchor {row} (label {int(labels_a[row])}) has '
                'no candidate with the same label in labels_b')
        loss = -((pos * log_prob).sum(dim=1) / num_pos).mean()
        return self.loss_weight * loss


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 (AMP) to fp32; fp64 stays fp64."""
    return x if x.dtype == torch.float64 else x.float()
